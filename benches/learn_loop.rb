# frozen_string_literal: true

# A bare loop of Classifier#learn (or #recognize) over GitLab CE's recorded requests, for
# instruction counts of the Ruby side: run it under callgrind with two pass counts and divide the
# difference by (passes difference × 4,033), so loading and compiling cancel out:
#
#   PASSES=3 valgrind --tool=callgrind ruby benches/learn_loop.rb
#   PASSES=8 valgrind --tool=callgrind ruby benches/learn_loop.rb
#
# Environment: PASSES (default 2), CALL=learn|recognize (default learn).
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "json"
require "gitlab/cells/learn"

corpus = File.expand_path("../../shared/corpus", __dir__)
passes = Integer(ENV.fetch("PASSES", "2"), exception: false)
call = ENV.fetch("CALL", "learn")
abort "learn_loop: PASSES must be a number of passes >= 1, not #{ENV.fetch("PASSES").inspect}" if passes.nil? || passes < 1
abort "learn_loop: CALL must be learn or recognize, not #{call.inspect}" unless %w[learn recognize].include?(call)

classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(corpus, "gitlab-ce.routes.json")))
requests = File.readlines(File.join(corpus, "gitlab-ce.recorded.jsonl"), chomp: true).reject(&:empty?).map do |line|
  JSON.parse(line).values_at("method", "path").map(&:freeze)
end
requests.each { |method, path| classifier.learn(method, path) }
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
passes.times do
  if call == "learn"
    requests.each { |method, path| classifier.learn(method, path) }
  else
    requests.each { |method, path| classifier.recognize(method, path) }
  end
end
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
warn format("learn_loop: %s %.0f ns a call (%d passes over %d requests)", call, elapsed * 1e9 / (passes * requests.size), passes, requests.size)
