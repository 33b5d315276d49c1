junction_add_plugin(gb-consumer ${CMAKE_CURRENT_LIST_DIR}/gb_consumer.cpp)
