# The Sidekiq peer of bench/redis (Debian ruby-sidekiq 6.4).
#
#   ruby sidekiq_peer.rb push N        N NoopJob jobs with Sidekiq::Client.push_bulk (chunks
#                                      of 1000) on queue "default"; REDIS_URL names the server
#   sidekiq -r ./sidekiq_peer.rb -c 5 -q default    one worker process (the bench starts 2)
#
# In a worker process each job is a no-op that counts itself; at exit the process writes
# "count first_job_start_ns last_job_end_ns" (CLOCK_MONOTONIC, the driver's clock) to
# $BENCH_SIDEKIQ_OUT.PID. Sidekiq's own per-job "start"/"done" INFO lines are turned off
# (log level WARN), as preforkd runs with log level warn.
require 'sidekiq'

# redis-rb 4.8 (Debian's, under Sidekiq 6.4) prints a deprecation warning for every BRPOP
# Sidekiq sends, i.e. one stderr line per job: silenced, it is not Sidekiq's cost.
Redis.silence_deprecations = true

def bench_now_ns
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
end

class NoopJob
  include Sidekiq::Worker
  LOCK = Mutex.new
  @count = 0
  @first = nil
  @last = nil
  class << self
    attr_accessor :count, :first, :last
  end

  def perform(_n)
    now = bench_now_ns
    LOCK.synchronize do
      NoopJob.first ||= now
      NoopJob.count += 1
      NoopJob.last = now
    end
  end
end

if $PROGRAM_NAME == __FILE__
  abort 'usage: ruby sidekiq_peer.rb push N' unless ARGV[0] == 'push'
  n = Integer(ARGV[1])
  (0...n).each_slice(1000) do |slice|
    Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'default', 'args' => slice.map { |i| [i] })
  end
else
  Sidekiq.configure_server do |config|
    config.logger.level = Logger::WARN
  end
  out = ENV['BENCH_SIDEKIQ_OUT']
  if out
    at_exit do
      File.write("#{out}.#{Process.pid}", "#{NoopJob.count} #{NoopJob.first || 0} #{NoopJob.last || 0}\n")
    end
  end
end
