// The third-party headers most of podlb's translation units include, precompiled once per build
// (cmake/podlb_pch.cmake) and by scripts/check_thread_safety.sh. Parsing grpc++, protobuf,
// nlohmann/json and abseil costs 10-20 s per file on our 2-core machines; loading them
// precompiled costs well under one. Only headers that never change with podlb's sources belong
// here, so a podlb edit never rebuilds the precompiled header.
// Every file still includes what it uses: the clang thread-safety check (make
// check-thread-safety) compiles each file with its own includes and would catch a missing one.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
