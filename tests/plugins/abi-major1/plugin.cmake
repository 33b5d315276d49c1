junction_add_plugin(abi-major1 ${CMAKE_CURRENT_LIST_DIR}/abi_major1.c)
