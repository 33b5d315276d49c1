#include "body.hpp"

#include <doctest/doctest.h>
