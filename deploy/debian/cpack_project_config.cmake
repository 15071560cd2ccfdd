# Read by cpack for each package it makes (CPACK_PROJECT_CONFIG_FILE). Without dpkg-shlibdeps
# CPack would quietly make a .deb that depends on none of the libraries it links: refuse instead.
if(CPACK_GENERATOR STREQUAL "DEB")
  find_program(STERITRACK_DPKG_SHLIBDEPS dpkg-shlibdeps)
  if(NOT STERITRACK_DPKG_SHLIBDEPS)
    message(FATAL_ERROR "steritrack: the Debian package needs dpkg-shlibdeps for its dependencies:"
                        " apt-get install dpkg-dev (deploy/install-deps.sh installs it)")
  endif()
endif()
