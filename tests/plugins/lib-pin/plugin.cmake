junction_add_plugin(lib-pin ${CMAKE_CURRENT_LIST_DIR}/lib_pin.cpp)
pkg_check_modules(JN_SRTP2_TEST REQUIRED IMPORTED_TARGET libsrtp2)
target_link_libraries(lib-pin PRIVATE PkgConfig::JN_SRTP2_TEST)
