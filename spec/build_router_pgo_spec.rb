# frozen_string_literal: true

require "open3"

# script/build-router-pgo, the router's profile-guided build (script/test runs it before these
# specs, and every real-process spec runs the binary it makes): its argument refusals, and that the
# profile it merged holds what the training load is for — the router's cached path, its learning,
# the floor's forwarding — so the build is laid out by real counts, not an empty profile.
RSpec.describe "script/build-router-pgo" do
  script = File.join(REPO_ROOT, "script", "build-router-pgo")

  [[%w[--train-seconds 0], "--train-seconds must be a positive integer, not '0'"],
   [%w[--train-seconds 3], "--train-seconds must be at least 4"],
   [%w[--train-seconds x], "--train-seconds must be a positive integer, not 'x'"],
   [%w[--bogus], "unknown argument --bogus"]].each do |args, reason|
    it "refuses #{args.join(" ")} with exit 2 and one line, before building anything" do
      out, err, status = Open3.capture3(script, *args, chdir: REPO_ROOT)
      expect(status.exitstatus).to eq(2)
      expect(out).to eq("")
      expect(err.lines.size).to eq(1)
      expect(err).to start_with("build-router-pgo: ").and include(reason)
    end
  end

  describe "the profile of the last build (target/pgo/router.profdata)" do
    profile = File.join(REPO_ROOT, "target", "pgo", "router.profdata")
    llvm = `rustc -vV 2>/dev/null`[/^LLVM version: (\d+)/, 1]
    profdata = ["llvm-profdata-#{llvm}", "/usr/lib/llvm-#{llvm}/bin/llvm-profdata"].find do |c|
      system("command -v #{c} >/dev/null 2>&1")
    end

    before do
      skip "no profile-guided build yet (script/build-router-pgo; script/test runs it)" unless File.exist?(profile)
      skip "llvm-profdata of rustc's LLVM #{llvm} is missing (script/bootstrap installs it)" unless profdata
    end

    # The largest block count of the functions whose symbol contains `name` (nil: no such function).
    def hottest(profdata, profile, name)
      out, status = Open3.capture2(profdata, "show", "--counts", "--function=#{name}", profile)
      raise "#{profdata} show failed" unless status.success?

      out.scan(/Block counts: \[([\d, ]*)\]/).flatten.flat_map { |c| c.split(",").map(&:to_i) }.max
    end

    it "counts the router's cached requests, its learning and the floor's forwarding" do
      # Seconds of wrk at tens of thousands of requests a second, even instrumented and on a busy machine.
      expect(hottest(profdata, profile, "cells_router7handler7respond")).to be > 10_000
      expect(hottest(profdata, profile, "cells_router5learn7Learner6accept")).to be > 1_000
      # The floor's own copies of hyper's code carry its crate's name.
      expect(hottest(profdata, profile, "bare_proxy.")).to be > 10_000
    end

    it "does not count what the training never does" do
      # No training request finds every cell down (the function is in the profile, never run).
      expect(hottest(profdata, profile, "cells_router7handler17no_cell_available")).to eq(0)
    end
  end
end
