# podlb_module(NAME DIR DEPS...) builds one library per architectural module from every .cc in
# DIR (recursively), so adding a file to a module needs no CMake edit.
function(podlb_module name dir)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${dir}/*.cc)
  if(NOT srcs)
    # A module with no sources yet still links (its dependents build against its headers).
    set(srcs ${CMAKE_BINARY_DIR}/${name}_empty.cc)
    file(WRITE ${srcs} "")
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${ARGN})
  podlb_use_pch(${name})
endfunction()

# podlb_tests(DIR DEPS...) makes one gtest binary per tests/DIR/*_test.cc and registers it
# with ctest. Each test binary runs as one ctest test; gtest filters are for humans.
function(podlb_tests dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${dir}/*_test.cc)
  foreach(src ${srcs})
    get_filename_component(test_name ${src} NAME_WE)
    add_executable(${test_name} ${src})
    target_link_libraries(${test_name} PRIVATE ${ARGN} podlb_test_support GTest::gmock_main)
    podlb_use_test_pch(${test_name})
    add_test(NAME ${dir}/${test_name} COMMAND ${test_name})
    set_tests_properties(${dir}/${test_name} PROPERTIES
      TIMEOUT 300
      ENVIRONMENT "PODLB_BINARY=$<TARGET_FILE:podlb>;PODLB_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
endfunction()
