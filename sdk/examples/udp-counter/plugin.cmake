# In-tree build of the example (included by sdk/CMakeLists.txt).
junction_add_plugin(udp-counter ${CMAKE_CURRENT_LIST_DIR}/udp_counter.cpp)
