// The Boost.Test entry point shared by the C++ test executables.
#define BOOST_TEST_MODULE dbridge
#include <boost/test/unit_test.hpp>
