junction_add_plugin(abi-major2 ${CMAKE_CURRENT_LIST_DIR}/abi_major2.c)
