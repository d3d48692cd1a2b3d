#include <gtest/gtest.h>

#include "core/log.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  stepaudio::log::init_from_env();
  return RUN_ALL_TESTS();
}
