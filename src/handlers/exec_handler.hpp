// The exec handler: fork+exec per job (see exec_handler.cpp).
#pragma once

#include "handlers/handler.hpp"

namespace preforkd {

class ExecHandler final : public Handler {
 public:
  explicit ExecHandler(const PoolConfig& pool);
  HandlerOutcome run(const Job& job, const RunControl& control) override;

 private:
  const PoolConfig& pool_;
};

}  // namespace preforkd
