# Test data (see tests/data/README.md): mirrors tests/data into ${QUANTD_TEST_DATA_DIR} at configure
# time — plain files copied, each tests/data/<dir>/<name>.tar.xz extracted into <dir>/ — and links
# models/tiny-qwen2-wp to the demo model the repository already ships. Tests read it through
# QUANTD_TEST_DATA_DIR (tests/testing/test_data.h). CMake re-runs when a file under tests/data changes.
set(QUANTD_TEST_DATA_DIR "${CMAKE_BINARY_DIR}/tests/data")

function(quantd_prepare_test_data)
  set(src "${CMAKE_SOURCE_DIR}/tests/data")
  set(dest "${QUANTD_TEST_DATA_DIR}")
  file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${src}" CONFIGURE_DEPENDS "${src}/*")
  foreach(rel ${files})
    set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}/${rel}")
    get_filename_component(rel_dir "${rel}" DIRECTORY)
    if(rel MATCHES "\\.tar\\.xz$")
      # Extract again only when the archive's bytes changed (a stamp holds their hash).
      file(SHA256 "${src}/${rel}" hash)
      set(stamp "${CMAKE_BINARY_DIR}/CMakeFiles/quantd-test-data/${rel}.sha256")
      set(old "")
      if(EXISTS "${stamp}")
        file(READ "${stamp}" old)
      endif()
      if(NOT old STREQUAL hash)
        file(ARCHIVE_EXTRACT INPUT "${src}/${rel}" DESTINATION "${dest}/${rel_dir}")
        file(WRITE "${stamp}" "${hash}")
      endif()
    else()
      file(COPY "${src}/${rel}" DESTINATION "${dest}/${rel_dir}")
    endif()
  endforeach()
  file(MAKE_DIRECTORY "${dest}/models")
  file(CREATE_LINK "${CMAKE_SOURCE_DIR}/demo/models/tiny-qwen2-wp" "${dest}/models/tiny-qwen2-wp"
       SYMBOLIC)
endfunction()

quantd_prepare_test_data()
