// The tests' precompiled header: the product's third-party headers plus googletest/googlemock,
// which nearly every test includes (cmake/podlb_pch.cmake).
#include "third_party.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
