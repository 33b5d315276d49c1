junction_add_plugin(tcp-loop-echo ${CMAKE_CURRENT_LIST_DIR}/tcp_loop_echo.cpp)
