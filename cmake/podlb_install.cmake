# Install rules for libpodlb: the public header, the three static libraries a client program
# links, a CMake package (find_package(podlb)) and a pkg-config file (podlb.pc).
#
# The module targets carry build-tree include paths (src/, include/), which install(EXPORT)
# refuses, so podlbConfig.cmake declares the imported targets itself.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS podlb_client podlb_balancing podlb_discovery podlb_core
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/podlb DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/podlbConfig.cmake.in
  ${CMAKE_BINARY_DIR}/podlbConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/podlb
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/podlbConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/podlbConfig.cmake ${CMAKE_BINARY_DIR}/podlbConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/podlb)

configure_file(${CMAKE_SOURCE_DIR}/cmake/podlb.pc.in ${CMAKE_BINARY_DIR}/podlb.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/podlb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
