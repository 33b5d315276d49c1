junction_add_plugin(media-echo ${CMAKE_CURRENT_LIST_DIR}/media_echo.cpp)
