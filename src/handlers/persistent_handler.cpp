// JSON-lines conversation with a long-lived handler process (see persistent_handler.hpp).
#include "handlers/persistent_handler.hpp"

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"
#include "util/log.hpp"

namespace preforkd {

namespace {

std::string handler_log_prefix(const PoolConfig& pool, const std::string* job_id) {
  return job_id ? fmt::format("pool={} pid={} job={} handler", pool.name, ::getpid(), *job_id)
                : fmt::format("pool={} pid={} handler", pool.name, ::getpid());
}

}  // namespace

std::string persistent_request(const Job& job) {
  nlohmann::json request = {{"id", job.id}, {"queue", job.queue}, {"attempt", job.attempt}};
  std::string line = request.dump();
  line.pop_back();  // the closing brace: the payload goes last, whatever it is
  line += ",\"payload\":";
  if (parse_outside_json(job.payload).is_discarded()) {
    // Not JSON (a Resque client may push anything): it travels as a JSON string.
    line += json_text(nlohmann::json(job.payload));
  } else {
    // Valid JSON goes as its own text, not parsed and written out again, which turned
    // 18446744073709551616 into 1.8446744073709552e+19 and 1.10 into 1.1. A raw line
    // break in valid JSON is whitespace (a string cannot hold one): a space keeps it on
    // the one line of the protocol.
    for (char c : job.payload) line += (c == '\n' || c == '\r') ? ' ' : c;
  }
  line += "}\n";
  return line;
}

std::optional<HandlerOutcome> parse_persistent_answer(const std::string& line,
                                                      const std::string& job_id,
                                                      std::string* problem) {
  std::string why;
  auto answer = parse_outside_json(line, &why);
  if (answer.is_discarded()) {
    // One byte that is not UTF-8 (in a note, an error text) made the whole answer "not
    // JSON": it was ignored, and the job waited for its timeout, or for ever.
    std::string repaired = with_valid_utf8(line);
    if (repaired != line) answer = parse_outside_json(repaired, &why);
  }
  if (answer.is_discarded() || !answer.is_object()) {
    *problem = answer.is_discarded() ? "not JSON: " + why : "not a JSON object";
    return std::nullopt;
  }
  auto id = answer.find("id");
  std::string answered = id == answer.end() ? "" : id->is_string() ? id->get<std::string>() : id->dump();
  if (answered != job_id) {
    *problem = "answer for id '" + answered + "' while job " + job_id + " is running";
    return std::nullopt;
  }
  auto status = answer.find("status");
  if (status == answer.end() || !status->is_string()) {
    *problem = "no \"status\"";
    return std::nullopt;
  }
  if (*status == "ok") return HandlerOutcome{};
  if (*status != "error") {
    *problem = "status must be \"ok\" or \"error\", got " + status->dump();
    return std::nullopt;
  }
  std::string error = "handler error";
  if (auto e = answer.find("error"); e != answer.end())
    error = e->is_string() ? e->get<std::string>() : e->dump();
  auto retry = answer.find("retry");
  if (retry != answer.end() && !retry->is_boolean()) {
    // "false" or 0 may well mean "do not retry", but a job is not made dead on a guess:
    // it follows the retry policy, and its error says why.
    error += "; \"retry\" must be true or false, not " + retry->dump() +
             ": the job follows the retry policy";
    return HandlerOutcome{HandlerOutcome::Kind::failed, error};
  }
  bool may_retry = retry == answer.end() || retry->get<bool>();
  return HandlerOutcome{may_retry ? HandlerOutcome::Kind::failed : HandlerOutcome::Kind::permanent,
                        error};
}

PersistentHandler::PersistentHandler(const PoolConfig& pool) : pool_(pool) {}

PersistentHandler::~PersistentHandler() {
  // The worker is done with it (recycled, QUIT, a reload): end of input is the handler's
  // cue to finish what it does after an answer and exit, as `while (<STDIN>)` does. It
  // used to be KILLed at once. One still running after timeout_grace gets TERM, then KILL.
  if (!process_ || !process_->running()) return;
  RunControl control;
  control.grace = pool_.jobs.timeout_grace;
  try {
    if (process_->close_stdin_and_wait(control.grace)) return;
    spdlog::warn("pool={} pid={}: persistent handler pid {} still running {}ms after its stdin was "
                 "closed: sending TERM",
                 pool_.name, ::getpid(), process_->pid(), control.grace.count());
    process_->stop(control);
  } catch (const std::exception& e) {
    // poll() failed: ~HandlerProcess KILLs it, as before.
    spdlog::warn("pool={} pid={}: persistent handler pid {}: {}", pool_.name, ::getpid(), process_->pid(), e.what());
  }
}

HandlerProcess& PersistentHandler::process() {
  // No waitpid per job: a handler that died since the last answer makes the request's
  // write fail (EPIPE), run() then stops (reaps) it and comes back here for a new one.
  if (process_ && process_->known_exited()) {
    spdlog::warn("pool={} pid={}: persistent handler pid {} {}; starting a new one", pool_.name,
                 ::getpid(), process_->pid(), process_->describe_exit());
    process_.reset();
  }
  if (!process_) {
    process_ = std::make_unique<HandlerProcess>(
        pool_.jobs.handler.argv, std::vector<std::string>{}, true, handler_log_prefix(pool_, nullptr),
        pool_.jobs.max_output_logged);
    spdlog::info("pool={} pid={}: persistent handler started, pid {}", pool_.name, ::getpid(),
                 process_->pid());
  }
  return *process_;
}

HandlerOutcome PersistentHandler::run(const Job& job, const RunControl& control) {
  // Its output while it runs the job is logged with the job's id; what comes after the
  // answer is logged without one, once this has returned.
  struct JobPrefix {
    PersistentHandler& owner;
    ~JobPrefix() {
      if (owner.process_) owner.process_->set_log_prefix(handler_log_prefix(owner.pool_, nullptr));
    }
  } restore{*this};
  return run_job(job, control);
}

HandlerOutcome PersistentHandler::run_job(const Job& job, const RunControl& control) {
  const std::string request = persistent_request(job);
  // A handler that died between two jobs is restarted before the job is sent. One that
  // was on its way out when the job was sent (a handler that exits after every N jobs,
  // just after its answer) took the request into its pipe and never read it: the job is
  // sent to a new one, uncharged. One that dies on reading it gets one more, fresh, try.
  for (int tries = 0; tries < 2; ++tries) {
    HandlerProcess& handler = process();
    handler.set_log_prefix(handler_log_prefix(pool_, &job.id));
    if (!handler.write_stdin(request, false)) {
      handler.stop(control);
      continue;
    }
    if (auto outcome = read_answer(job, control, request.size())) return *outcome;
    spdlog::info("pool={} pid={} job={}: persistent handler pid {} {} before it read the job; "
                 "sending the job to a new one",
                 pool_.name, ::getpid(), job.id, handler.pid(), handler.describe_exit());
  }
  return {HandlerOutcome::Kind::failed,
          "persistent handler closed its stdin (" + process_->describe_exit() + ")"};
}

std::optional<HandlerOutcome> PersistentHandler::read_answer(const Job& job, const RunControl& control,
                                                             size_t request_bytes) {
  HandlerProcess& handler = *process_;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (control.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + control.timeout;
  for (;;) {
    std::string line;
    switch (handler.wait(true, deadline, control, &line)) {
      case HandlerProcess::Event::timed_out:
        handler.stop(control);
        return HandlerOutcome{HandlerOutcome::Kind::timeout, fmt::format("timeout after {}ms", control.timeout.count())};
      case HandlerProcess::Event::fast_stop:
        handler.stop(control);
        return HandlerOutcome{HandlerOutcome::Kind::given_back, "stopped by TERM"};
      case HandlerProcess::Event::exited:
        if (handler.unread_stdin_bytes() >= request_bytes) return std::nullopt;  // never read a byte of it
        return HandlerOutcome{HandlerOutcome::Kind::failed,
                              "persistent handler " + handler.describe_exit() + " while running the job"};
      case HandlerProcess::Event::line_too_long:
        // The rest of that line would be taken for the next job's answer: a fresh process.
        handler.stop(control);
        return HandlerOutcome{HandlerOutcome::Kind::failed,
                fmt::format("persistent handler wrote a line longer than {} MiB on stdout: "
                            "stopped (answers are one JSON line; write large results elsewhere)",
                            HandlerProcess::max_line_bytes >> 20)};
      case HandlerProcess::Event::line: break;
    }
    std::string problem;
    if (auto outcome = parse_persistent_answer(line, job.id, &problem)) return *outcome;
    handler.log_output(fmt::format("not an answer ({}): {}", problem, line));
  }
}

}  // namespace preforkd
