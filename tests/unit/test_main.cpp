// Boost.Test entry point for the unit tests of the pure request stages.
#define BOOST_TEST_MODULE music_api_unit
#include <boost/test/included/unit_test.hpp>
