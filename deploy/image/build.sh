#!/usr/bin/env bash
# Builds one of podlb's OCI images FROM scratch with Debian's buildah, from what is on this
# Debian 12 machine only (no registry is contacted), into buildah storage under OUT_DIR.
#
#   deploy/image/build.sh BINARY IMAGE OUT_DIR
#   e.g. deploy/image/build.sh build/podlb-cluster localhost/podlb:0.1.0 build/image
#
# Steps: split BINARY's debug info off (OUT_DIR/NAME.debug, linked by .gnu_debuglink) and put the
# stripped binary at /podlb; copy exactly the shared libraries `ldd` resolves for it, at the
# paths the loader finds them, plus the loader named in its PT_INTERP; add the CA bundle (the
# proxy's upstream TLS without --upstream-ca verifies against the system roots), /etc/passwd and
# /etc/group with the nonroot user 65532, /etc/nsswitch.conf and a /tmp; then `buildah build`
# deploy/image/Containerfile over that root, and `buildah push` it to OUT_DIR/NAME-TAG.oci.tar.
#
# Storage: OUT_DIR/storage (vfs driver, needs no kernel overlay support nor global state);
# run buildah with the same --root/--runroot/--storage-driver to see the image, as
# deploy/image/smoke_test.sh does. Root is needed (buildah's vfs storage and chroot isolation;
# a rootless buildah would need subuid ranges set up).
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 BINARY IMAGE OUT_DIR   (e.g. build/podlb-cluster localhost/podlb:0.1.0 build/image)" >&2
  exit 2
fi
binary=$1 image=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
for tool in buildah ldd readelf objcopy strip; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found: run scripts/bootstrap.sh" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "build.sh: $binary is not an executable (build it first)" >&2; exit 1; }
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca_bundle" ] || { echo "build.sh: no $ca_bundle (package ca-certificates)" >&2; exit 1; }

name=${image##*/}; name=${name%%:*}  # localhost/podlb:0.1.0 -> podlb
tag=${image##*:}
version=$("$binary" --version | awk '{print $2}')
mkdir -p "$out"
out=$(cd "$out" && pwd)
context="$out/$name/context"
rootfs="$context/rootfs"
rm -rf "$context"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/lib/ssl" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

# The binary, without its debug info (kept beside the image for symbolizing crashes).
objcopy --only-keep-debug "$binary" "$out/$name.debug"
strip --strip-all -o "$rootfs/podlb" "$binary"
objcopy --add-gnu-debuglink="$out/$name.debug" "$rootfs/podlb"
chmod 0755 "$rootfs/podlb"

# Exactly the libraries the loader resolves for it (ldd lists the whole closure), each copied
# (the file, not the symlink) to the path the loader found it at, and the loader itself.
interpreter=$(readelf -l "$rootfs/podlb" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
[ -n "$interpreter" ] || { echo "build.sh: $binary names no program interpreter" >&2; exit 1; }
libraries=("$interpreter")
while read -r line; do
  case "$line" in
    *"not found"*) echo "build.sh: $binary needs a library that is not installed: $line" >&2; exit 1 ;;
    *" => /"*) libraries+=("$(echo "$line" | sed 's/.* => \(\/[^ ]*\) .*/\1/')") ;;
  esac
done < <(ldd "$rootfs/podlb")
for library in "${libraries[@]}"; do
  mkdir -p "$rootfs$(dirname "$library")"
  cp -L "$library" "$rootfs$library"
done

# Accounts (the image runs as 65532; no shell exists), name lookup from files then DNS (glibc
# 2.36 has both built in: no libnss_* to copy), and the CA bundle where OpenSSL and curl look.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
  > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
cp -L "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$rootfs/usr/lib/ssl/certs"

storage=(--root "$out/storage" --runroot "$out/run" --storage-driver vfs)
# The image's creation time is the source's last commit, so two builds of one commit with the
# same libraries give the same image (buildah also sets every file's time to it).
timestamp=$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)
buildah "${storage[@]}" build --quiet --isolation chroot --timestamp "$timestamp" \
  --build-arg PODLB_VERSION="$version" --build-arg PODLB_IMAGE_TITLE="$name" \
  -f "$here/Containerfile" -t "$image" "$context" >/dev/null
archive="$out/$name-$tag.oci.tar"
rm -f "$archive"
buildah "${storage[@]}" push --quiet "$image" "oci-archive:$archive:$image" >/dev/null
# The image a rebuild replaced keeps its whole root in vfs storage until removed.
buildah "${storage[@]}" rmi --prune >/dev/null 2>&1 || true

size=$(buildah "${storage[@]}" images --format '{{.Size}}' "$image")
echo "image $image: $size (root file system $(du -sb "$rootfs" | cut -f1) bytes:" \
  "/podlb $(stat -c %s "$rootfs/podlb") bytes and ${#libraries[@]} shared libraries);" \
  "archive $archive ($(stat -c %s "$archive") bytes, layer gzipped)"
