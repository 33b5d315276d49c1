junction_add_plugin(io-echo ${CMAKE_CURRENT_LIST_DIR}/io_echo.cpp)
