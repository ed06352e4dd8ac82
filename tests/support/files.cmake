# ukey-testfiles (ukeytest/files.h): what the test suites and ukey-bench
# share. Included from tests/support and from bench/, which is built with or
# without the tests: whichever comes first defines it.
if(NOT TARGET ukey-testfiles)
  add_library(ukey-testfiles STATIC ${CMAKE_CURRENT_LIST_DIR}/src/files.cpp)
  target_include_directories(ukey-testfiles PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
  # toml_string() is the core's (token/toml_read.h): one TOML quoting.
  target_link_libraries(ukey-testfiles PUBLIC ukey-token)
endif()
