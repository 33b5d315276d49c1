junction_add_plugin(abi-short-vtable ${CMAKE_CURRENT_LIST_DIR}/abi_short_vtable.c)
