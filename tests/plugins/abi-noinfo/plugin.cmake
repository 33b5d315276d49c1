junction_add_plugin(abi-noinfo ${CMAKE_CURRENT_LIST_DIR}/abi_noinfo.c)
