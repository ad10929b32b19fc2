// This process's established TCP connections, read from /proc: what the pods accepted from us,
// for tests that prove a connection was kept (same local port) or opened. Test thread only.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace podlb::testing {

// This process's established TCP connections, as "local port" strings keyed by the remote IP.
// Read from /proc (sockets whose inode is one of our descriptors), i.e. what the pods accepted
// from us; the API server and readiness probes are other peers or other processes.
inline std::map<std::string, std::set<std::string>> OurConnectionsByRemoteIp() {
  std::set<std::string> inodes;
  if (DIR* fds = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(fds)) {
      char target[64] = {};
      std::string path = std::string("/proc/self/fd/") + entry->d_name;
      ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
      std::string link(target, n > 0 ? static_cast<size_t>(n) : 0);
      if (link.starts_with("socket:[")) inodes.insert(link.substr(8, link.size() - 9));
    }
    closedir(fds);
  }
  std::map<std::string, std::set<std::string>> out;
  // gRPC's client sockets are dual-stack: IPv4 peers show up in tcp6 as ::ffff:a.b.c.d.
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream table(file);
    std::string line;
    std::getline(table, line);  // header
    while (std::getline(table, line)) {
      std::istringstream in(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      if (!(in >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
            timeout >> inode)) {
        continue;
      }
      if (state != "01" || !inodes.count(inode)) continue;  // 01: ESTABLISHED
      // "0100007F:1F90": the address as 32-bit words in host (little-endian) order, then the
      // port in hex. The IPv4 address (or the v4-mapped tail of an IPv6 one) is the last word.
      const size_t colon = remote.find(':');
      uint32_t ip = std::stoul(remote.substr(colon - 8, 8), nullptr, 16);
      std::string remote_ip = std::to_string(ip & 0xff) + "." + std::to_string((ip >> 8) & 0xff) +
                              "." + std::to_string((ip >> 16) & 0xff) + "." +
                              std::to_string(ip >> 24);
      out[remote_ip].insert(std::to_string(std::stoul(local.substr(local.find(':') + 1), nullptr, 16)));
    }
  }
  return out;
}

}  // namespace podlb::testing
