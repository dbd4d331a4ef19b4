// preforkctl's commands, each on an open source; they print to stdout and throw
// std::invalid_argument (usage), JobNotFound or SourceError, which ctl_main reports.
#pragma once

#include "ctl/ctl_args.hpp"
#include "preforkd/config.hpp"
#include "preforkd/job_source.hpp"

namespace preforkd::ctl {

int enqueue_command(const Args& args, JobSource& source);
int job_command(const Args& args, JobSource& source);
int jobs_command(const Args& args, JobSource& source);
int retry_command(const Args& args, JobSource& source);
int delete_command(const Args& args, JobSource& source);
int stats_command(const Args& args, JobSource& source);
int migrate_command(const Args& args, JobSource& source);

// After an enqueue: a warning on stderr when no jobs pool of `config` takes `queue` from
// `source` (a typo, or a pool not deployed yet): the job waits until one does.
void warn_if_no_pool_serves(const Config& config, const std::string& source, const std::string& queue);

// Throws std::invalid_argument ("WHAT 'NAME' is not valid: ...") unless `name` is a
// queue name.
void require_queue_name(const std::string& name, const std::string& what);

// "2026-11-25T10:00:00Z" (UTC: the Z required, the seconds optional) or a Unix time in
// seconds.
SystemTime parse_time(const std::string& text);
std::string format_time(SystemTime time);

}  // namespace preforkd::ctl
