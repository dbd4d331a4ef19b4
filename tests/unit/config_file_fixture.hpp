// A test fixture for config loading: a config file in a fresh temporary directory,
// the problems a YAML text produces, and the FILE:LINE:COL prefix they should carry.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "preforkd/config.hpp"

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("preforkd-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "preforkd.yaml").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> problems_of(const std::string& yaml) {
    std::ofstream(path_) << yaml;
    try {
      preforkd::load_config(path_);
    } catch (const preforkd::ConfigError& e) {
      return e.problems();
    }
    return {};
  }
  std::string at(int line, int col, const std::string& message) const {
    return path_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
  }

  std::filesystem::path dir_;
  std::string path_;
};
