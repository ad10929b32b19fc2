// ResourceNameTable: the resource names ADS streams subscribe to, each kept once per control
// plane however many streams name it. 10,000 clients that each watch the same ten Services hold
// pointers to ten shared names (with the Service each parses to, parsed once), not 100,000
// strings and keys of their own: the per-stream state of a subscription is a pointer and the
// resources sent and ACKed. A name lives while a stream holds it: the last holder's release
// takes it out of the table, so a control plane under years of Service churn keeps only the
// names clients ask for now. Thread-safe; Intern is taken on subscription changes only, never
// on a push or an ACK.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "core/endpoint.h"

namespace podlb::xds {

struct ResourceName {
  std::string text;
  std::optional<ServiceKey> key;  // the Service the name refers to, if it parses as one
};
using ResourceNameConstSharedPtr = std::shared_ptr<const ResourceName>;

class ResourceNameTable : public std::enable_shared_from_this<ResourceNameTable> {
 public:
  // Owned through a shared_ptr: a name released after its control plane is gone (a stream
  // outliving its service in a test, say) still finds the table it must leave.
  static std::shared_ptr<ResourceNameTable> Create();

  // The one shared `text`, created on first use.
  ResourceNameConstSharedPtr Intern(std::string_view text);
  // Names held by at least one stream.
  size_t size() const;

 private:
  ResourceNameTable() = default;
  void Release(const ResourceName* name);

  struct Slot {
    const ResourceName* raw = nullptr;  // which object the slot is for (see Release)
    std::weak_ptr<const ResourceName> name;
  };
  mutable absl::Mutex mu_;
  // Keyed by a view of the name's own text: the slot goes (Release) before the text does.
  std::map<std::string_view, Slot, std::less<>> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::xds
