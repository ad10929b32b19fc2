// Forward declaration of the xDS Node message, so headers that only pass it around need not
// include generated code.
#pragma once

namespace envoy::config::core::v3 {
class Node;
}  // namespace envoy::config::core::v3
