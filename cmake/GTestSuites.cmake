# cu3d_discover_test_suites(<target> LABEL <label>)
#
# Registers one CTest test per GoogleTest suite of <target> (`Suite` runs `--gtest_filter=Suite.*`),
# where gtest_discover_tests registers one per case. Each test is a process, and a binary that
# links CUDA's libraries takes ~0.1 s to start before it can find that there is no GPU: the GPU
# suite's ~900 cases, all skipped on a machine without one, cost CI ~95 s of CPU in starting up.
# Per suite they are 9 processes. A suite whose cases all skip (gtest: "[  PASSED  ] 0 tests")
# shows as skipped; one where any case ran shows as passed or failed, and its output lists every
# case.
#
# The list is read from the binary after each build (as gtest_discover_tests does), by this same
# file run as a script.
if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests OUTPUT_VARIABLE listing
                  RESULT_VARIABLE result TIMEOUT 60)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${result}):\n${listing}")
  endif()
  string(REPLACE "\n" ";" lines "${listing}")
  set(script "")
  foreach(line IN LISTS lines)
    # Suite lines start in column 0 and end with '.', typed ones followed by "  # TypeParam = ...";
    # case lines are indented. gtest_main's banner has no trailing '.' before a space or the end.
    if(line MATCHES "^([^ #][^ ]*)\\.( |$)")
      set(suite "${CMAKE_MATCH_1}")
      string(APPEND script
             "add_test([==[${suite}]==] [==[${TEST_EXECUTABLE}]==] "
             "[==[--gtest_filter=${suite}.*]==])\n"
             "set_tests_properties([==[${suite}]==] PROPERTIES LABELS [==[${TEST_LABEL}]==] "
             "SKIP_REGULAR_EXPRESSION [==[\\[  PASSED  \\] 0 tests]==])\n")
    endif()
  endforeach()
  file(WRITE "${CTEST_FILE}" "${script}")
  return()
endif()

function(cu3d_discover_test_suites target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "LABEL" "")
  set(ctest_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
                     COMMAND ${CMAKE_COMMAND} -D TEST_EXECUTABLE=$<TARGET_FILE:${target}>
                             -D CTEST_FILE=${ctest_file} -D TEST_LABEL=${arg_LABEL}
                             -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE}
                     BYPRODUCTS ${ctest_file}
                     VERBATIM)
  # CTest reads the list only once the binary has been built and listed.
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites_include.cmake")
  file(WRITE "${include_file}"
       "if(EXISTS [==[${ctest_file}]==])\n  include([==[${ctest_file}]==])\nelse()\n"
       "  add_test([==[${target}_NOT_BUILT]==] [==[${target}_NOT_BUILT]==])\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
