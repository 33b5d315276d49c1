junction_add_plugin(abi-old-minor ${CMAKE_CURRENT_LIST_DIR}/abi_old_minor.c)
