include(GoogleTest)

# quantd_add_test(NAME n SOURCES ... LIBS ... LABELS unit|integration|gpu [TIMEOUT s])
# Builds one GoogleTest executable and registers each of its test cases with ctest under the labels.
# Tests find their data through QUANTD_TEST_DATA_DIR (tests/testing/test_data.h; QuantdTestData.cmake)
# and files beside them through QUANTD_SOURCE_DIR.
function(quantd_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT T_LABELS)
    message(FATAL_ERROR "quantd_add_test(${T_NAME}): LABELS is required (unit, integration or gpu)")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${T_NAME} PRIVATE "${CMAKE_SOURCE_DIR}")
  target_compile_definitions(${T_NAME} PRIVATE
    QUANTD_TEST_DATA_DIR="${QUANTD_TEST_DATA_DIR}" QUANTD_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    QUANTD_BINARY_DIR="${CMAKE_BINARY_DIR}")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  quantd_set_warnings(${T_NAME})
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${T_ENVIRONMENT}"
    WORKING_DIRECTORY "${CMAKE_BINARY_DIR}")
endfunction()
