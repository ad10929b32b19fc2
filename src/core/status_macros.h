// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Debian's abseil (20220623) ships neither, so podlb defines
// them once here. Usable from any thread; they only touch their arguments.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PODLB_CONCAT_INNER(a, b) a##b
#define PODLB_CONCAT(a, b) PODLB_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status podlb_status_ = (expr);     \
    if (!podlb_status_.ok()) return podlb_status_; \
  } while (0)

#define PODLB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  PODLB_ASSIGN_OR_RETURN_IMPL(PODLB_CONCAT(podlb_statusor_, __LINE__), lhs, expr)
