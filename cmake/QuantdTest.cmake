include(GoogleTest)

# quantd_add_test(NAME n SOURCES ... LIBS ... LABELS unit|integration|gpu [TIMEOUT s])
# Builds one GoogleTest executable and registers each of its test cases with ctest under the labels.
# Tests find ../shared through the QUANTD_SHARED_DIR and their own data through QUANTD_SOURCE_DIR.
function(quantd_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    message(FATAL_ERROR "quantd_add_test(${T_NAME}): LABELS is required (unit, integration or gpu)")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    QUANTD_SHARED_DIR="${QUANTD_SHARED_DIR}" QUANTD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    QUANTD_BINARY_DIR="${CMAKE_BINARY_DIR}")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  quantd_set_warnings(${T_NAME})
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    WORKING_DIRECTORY "${CMAKE_BINARY_DIR}")
endfunction()
