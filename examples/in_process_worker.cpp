// An in-process handler: a program that links libpreforkd, registers a C++ function
// for the queue "thumbnails" and runs the preforkd command line. Built as
// build/preforkd-example-in-process; run it with examples/in_process.yaml:
//   build/preforkd-example-in-process -c examples/in_process.yaml
#include <nlohmann/json.hpp>
#include <preforkd/job_handler.hpp>
#include <preforkd/supervisor.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  preforkd::register_job_handler("thumbnails", [](const preforkd::Job& job,
                                                  preforkd::JobContext& ctx) {
    auto payload = nlohmann::json::parse(job.payload, nullptr, false);
    if (payload.is_discarded() || !payload.is_object() || !payload.contains("image"))
      return preforkd::JobResult::failed("payload needs {\"image\": \"...\"}");
    // Long work checks ctx.stop_requested() (fast stop or timeout) at safe points.
    if (ctx.stop_requested()) return preforkd::JobResult::retry("stopping");
    spdlog::info("thumbnail of {} done (job {}, attempt {})", payload["image"].get<std::string>(),
                 job.id, job.attempt);
    return preforkd::JobResult::done();
  });
  return preforkd::run_main(argc, argv);
}
