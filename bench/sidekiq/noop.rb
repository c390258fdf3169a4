# frozen_string_literal: true

# No-op jobs per second through Sidekiq on Redis: enqueue N jobs with Sidekiq::Client.push_bulk,
# then process them in this process with Sidekiq's own launcher (manager, processors, BasicFetch:
# BRPOP is Sidekiq's ack) at concurrency C, and print one line of JSON to stdout.
#
#   ruby bench/sidekiq/noop.rb --jobs 10000 --concurrency 10   # REDIS_URL from scripts/lib/sidekiq.sh
#
# It flushes the Redis database at REDIS_URL: point it at a private redis only.

require "optparse"
require "json"
require "sidekiq"
require "sidekiq/launcher"

jobs = 10_000
concurrency = 10
timeout = 600.0
OptionParser.new do |o|
  o.banner = "usage: ruby bench/sidekiq/noop.rb [--jobs N] [--concurrency C] [--timeout SECONDS]"
  o.on("--jobs N", Integer, "jobs to enqueue and process (default 10000)") { |v| jobs = v }
  o.on("--concurrency C", Integer, "Sidekiq processor threads (default 10)") { |v| concurrency = v }
  o.on("--timeout SECONDS", Float, "give up processing after this long (default 600)") { |v| timeout = v }
end.parse!
abort "--jobs and --concurrency must be positive" unless jobs.positive? && concurrency.positive?
redis_url = ENV.fetch("REDIS_URL") { abort "REDIS_URL is not set: source scripts/lib/sidekiq.sh first" }

# Process-local completion counter: the only thing a job does.
module Done
  @lock = Mutex.new
  @count = 0
  def self.incr
    @lock.synchronize { @count += 1 }
  end

  def self.count
    @lock.synchronize { @count }
  end
end

JOB_MODULE = defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker
class NoopJob
  include JOB_MODULE
  # No retry set and no dead set: a no-op cannot fail, and nothing should linger in Redis.
  sidekiq_options retry: false, backtrace: false

  def perform(_index)
    Done.incr
  end
end

# Debian 12 pairs Sidekiq 6.4.1 with redis-rb 4.8, which warns on stderr at every BRPOP (Sidekiq's
# fetch) and SADD: silence that, or the benchmark measures writing warnings.
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

logger = Sidekiq::Logger.new($stderr)
logger.level = Logger::WARN
# Pool: one connection per processor (each blocks in BRPOP) plus heartbeat, poller and client.
redis_options = { url: redis_url, size: concurrency + 5 }

major = Gem::Version.new(Sidekiq::VERSION).segments.first
if major >= 7
  # Sidekiq 7+: an embedded instance on the default configuration (not tried here: Debian 12
  # ships 6.4.1).
  Sidekiq.default_configuration.logger = logger
  Sidekiq.default_configuration.redis = redis_options
  start_processing = lambda do
    Sidekiq.configure_embed do |config|
      config.logger = logger
      config.redis = redis_options
      config.queues = %w[default]
      config.concurrency = concurrency
    end.tap(&:run)
  end
else
  # Sidekiq 6.x: what `sidekiq -c C -q default` sets up, without the CLI.
  Sidekiq.logger = logger
  Sidekiq.redis = redis_options
  Sidekiq.options[:queues] = %w[default]
  Sidekiq.options[:concurrency] = concurrency
  Sidekiq.options[:timeout] = 5
  start_processing = lambda do
    Sidekiq::Launcher.new(Sidekiq.options).tap(&:run)
  end
end

info = Sidekiq.redis(&:info)
Sidekiq.redis(&:flushdb)

clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
t0 = clock.call
(0...jobs).each_slice(1000) do |slice|
  Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] })
end
t1 = clock.call
queued = Sidekiq.redis { |c| c.llen("queue:default") }
abort "enqueued #{queued} jobs, expected #{jobs}" unless queued == jobs

runner = start_processing.call
deadline = t1 + timeout
sleep 0.001 while Done.count < jobs && clock.call < deadline
t2 = clock.call
done = Done.count
runner.stop
abort "processed #{done} of #{jobs} jobs in #{timeout} s" if done < jobs

enqueue = t1 - t0
process = t2 - t1
total = t2 - t0
puts JSON.generate(
  system: "sidekiq",
  sidekiq_version: Sidekiq::VERSION,
  ruby_version: RUBY_VERSION,
  redis_version: info["redis_version"],
  jobs: jobs,
  concurrency: concurrency,
  enqueue_seconds: enqueue.round(6),
  process_seconds: process.round(6),
  total_seconds: total.round(6),
  jobs_per_second: (jobs / total).round(1),
  enqueue_jobs_per_second: (jobs / enqueue).round(1),
  process_jobs_per_second: (jobs / process).round(1)
)
