junction_add_plugin(abi-major3 ${CMAKE_CURRENT_LIST_DIR}/abi_major3.c)
