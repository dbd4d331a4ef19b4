// The handler a pool's config asks for.
#include "handlers/exec_handler.hpp"
#include "handlers/in_process_handler.hpp"
#include "handlers/persistent_handler.hpp"

namespace preforkd {

std::unique_ptr<Handler> make_handler(const PoolConfig& pool, const SourceConfig& source) {
  switch (pool.jobs.handler.kind) {
    case HandlerKind::exec: return std::make_unique<ExecHandler>(pool);
    case HandlerKind::persistent: return std::make_unique<PersistentHandler>(pool);
    case HandlerKind::in_process: return std::make_unique<InProcessHandler>(pool, source);
  }
  return nullptr;
}

}  // namespace preforkd
