# Precompiled headers. Most of podlb's translation units include grpc++, protobuf, nlohmann/json
# and abseil; parsing them is most of a file's compile time (10-20 s on 2 cores). One
# precompiled header for the product (cmake/pch/third_party.h) and one for the tests
# (cmake/pch/tests.h, adding googletest) are built once and reused by every target
# (REUSE_FROM). GCC uses a precompiled header only when the compile defines the same macros as
# the one that made it: the anchors link what every module links (spdlog's definitions come with
# it, -pthread is a global option), the tests' anchor adds GTest's, and -Winvalid-pch says so
# when a target differs. Generated protobuf code (-w), the benchmarks and the examples do not
# reuse it.
# ccache caches compiles that use it given the sloppiness set with its launcher (top-level
# CMakeLists.txt). -DPODLB_PCH=OFF builds without.
option(PODLB_PCH "Precompile the heavy third-party headers" ON)

if(PODLB_PCH)
  add_library(podlb_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch/anchor.cc)
  target_link_libraries(podlb_pch PRIVATE absl::status absl::statusor absl::strings
    absl::synchronization absl::time spdlog::spdlog fmt::fmt gRPC::grpc++ protobuf::libprotobuf
    nlohmann_json::nlohmann_json)
  target_precompile_headers(podlb_pch PRIVATE ${CMAKE_SOURCE_DIR}/cmake/pch/third_party.h)
endif()

# podlb_use_pch(TARGET): TARGET reuses the product's precompiled header.
function(podlb_use_pch target)
  if(PODLB_PCH)
    target_precompile_headers(${target} REUSE_FROM podlb_pch)
  endif()
endfunction()

# podlb_test_pch_anchor(): the tests' precompiled header (called once GTest is found).
function(podlb_test_pch_anchor)
  if(PODLB_PCH)
    add_library(podlb_test_pch OBJECT ${CMAKE_SOURCE_DIR}/cmake/pch/anchor.cc)
    target_link_libraries(podlb_test_pch PRIVATE absl::status absl::statusor absl::strings
      absl::synchronization absl::time spdlog::spdlog fmt::fmt gRPC::grpc++
      protobuf::libprotobuf nlohmann_json::nlohmann_json GTest::gmock)
    target_precompile_headers(podlb_test_pch PRIVATE ${CMAKE_SOURCE_DIR}/cmake/pch/tests.h)
  endif()
endfunction()

# podlb_use_test_pch(TARGET): TARGET (a test or test support library) reuses the tests' one.
function(podlb_use_test_pch target)
  if(PODLB_PCH)
    target_precompile_headers(${target} REUSE_FROM podlb_test_pch)
  endif()
endfunction()
