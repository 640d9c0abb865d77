# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "open3"
require "digest"
require "securerandom"

# Real curl uploads through the router (issue 14, item 8) to Puma cells running the gem
# (spec/support/git_cell/config.ru's upload sink, which answers the size and SHA-256 of what it
# read): `-T` (PUT with Content-Length, and curl's own `Expect: 100-continue` for large files),
# `--data-binary` with `Transfer-Encoding: chunked`, `-F` multipart, an explicit
# `Expect: 100-continue`. Each body must arrive byte for byte at the cell the learn answer names,
# exactly once. The upload paths are not routes of GitLab CE's recorded table (it has no upload
# endpoint these requests fit), so the gem answers the default cell, cell_b (uncacheable): the
# router's routing by namespace is spec/router_git_clients_spec.rb's subject; here it is the bytes.
RSpec.describe "curl uploads through the router", :e2e do
  def curl(*args)
    out, err, status = Open3.capture3("curl", "--silent", "--show-error", "--max-time", "60", *args)
    raise "curl #{args.join(" ")} failed (#{status}): #{err}" unless status.success?

    [out, err]
  end

  def url(path)
    "http://127.0.0.1:#{@router.port}#{path}"
  end

  # A file of `size` random bytes; returns [path, sha256].
  def random_file(name, size)
    path = File.join(@tmp, name)
    data = SecureRandom.random_bytes(size)
    File.binwrite(path, data)
    [path, Digest::SHA256.hexdigest(data)]
  end

  # A second router before the same cells with its own `timeouts` (the caller stops it), started
  # and ready.
  def extra_router(name, timeouts)
    router = E2E::Router.new(name: name, port: E2E.free_port, log: File.join(@tmp, "#{name}.log"), cells: @cells,
                             default_cell: "cell_b", dir: @tmp, bin: File.join(@tmp, "cells-router"), timeouts: timeouts)
    router.start
    router.wait_until_ready
    router
  end

  def records_for(cell, path)
    cell.records.select { |r| r["path"] == path }
  end

  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`)" unless File.executable?(E2E::ROUTER_BIN)

    @tmp = Dir.mktmpdir("cells-curl")
    @cells, @router = E2E.git_cells_behind_router(dir: @tmp, name: "router_curl", default_cell: "cell_b",
                                                  repos: { "cell_a" => @tmp, "cell_b" => @tmp })
    @cell_a, @cell_b = @cells
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@tmp) if @tmp
  end

  it "curl -T: a PUT with Content-Length (and curl's Expect: 100-continue) arrives whole, once" do
    file, sha = random_file("put.bin", 3 * 1024 * 1024)
    path = "/bravo/project/-/uploads/put.bin"
    out, err = curl("-T", file, "-v", url(path))
    answer = JSON.parse(out)
    expect(answer).to include("method" => "PUT", "bytes" => 3 * 1024 * 1024, "sha256" => sha)
    # curl asked before sending a body this large, and got a 100 Continue through the router.
    expect(err).to match(/^> Expect: 100-continue/i)
    expect(err).to match(%r{^< HTTP/1\.1 100 Continue}i)
    recs = records_for(@cell_b, path)
    expect(recs.size).to eq(1)
    expect(recs.first).to include("content_length" => (3 * 1024 * 1024).to_s, "body_bytes" => 3 * 1024 * 1024, "status" => 200)
    expect(records_for(@cell_a, path)).to be_empty
  end

  it "curl --data-binary with Transfer-Encoding: chunked arrives whole, once" do
    file, sha = random_file("chunked.bin", (2 * 1024 * 1024) + 17)
    path = "/bravo/project/-/uploads/chunked"
    out, err = curl("-v", "--data-binary", "@#{file}", "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream", url(path))
    expect(err).to match(/^> Transfer-Encoding: chunked/i)
    expect(err).not_to match(/^> Content-Length/i)
    expect(JSON.parse(out)).to include("method" => "POST", "bytes" => (2 * 1024 * 1024) + 17, "sha256" => sha)
    recs = records_for(@cell_b, path)
    expect(recs.size).to eq(1)
    # Puma decodes the chunked body and gives the app its decoded length.
    expect(recs.first).to include("content_length" => ((2 * 1024 * 1024) + 17).to_s, "body_bytes" => (2 * 1024 * 1024) + 17)
    expect(records_for(@cell_a, path)).to be_empty
  end

  it "curl -F: a multipart/form-data upload arrives whole, once" do
    file, sha = random_file("form.bin", (1024 * 1024) + 3)
    path = "/bravo/project/-/uploads/form"
    out, = curl("-F", "file=@#{file};filename=report.bin", "-F", "note=hello", url(path))
    expect(JSON.parse(out)).to include("method" => "POST", "part_filename" => "report.bin", "bytes" => (1024 * 1024) + 3, "sha256" => sha)
    expect(records_for(@cell_b, path).size).to eq(1)
  end

  it "an explicit Expect: 100-continue on a small POST gets its 100 Continue, then the cell's answer" do
    file, sha = random_file("small.bin", 5000)
    path = "/bravo/project/-/uploads/small"
    out, err = curl("-v", "--data-binary", "@#{file}", "-H", "Expect: 100-continue", url(path))
    expect(JSON.parse(out)).to include("bytes" => 5000, "sha256" => sha)
    expect(err).to match(%r{^< HTTP/1\.1 100 Continue}i)
    expect(err).to match(%r{^< HTTP/1\.1 200 OK}i)
    expect(records_for(@cell_b, path).size).to eq(1)
    expect(records_for(@cell_a, path)).to be_empty
  end

  # An upload slower than the request timeout (a large push, LFS object or artifact on a slow
  # link): the timeout bounds the cell's silence, not the upload. Here 600 KB at 150 KB/s, ~4 s,
  # through a router whose request timeout is 1 s: it used to be cut with a 504 after 1 s.
  it "an upload that takes longer than the request timeout arrives whole, once" do
    router = extra_router("router_curl_slow", "request" => "1s")
    file, sha = random_file("slow.bin", 600 * 1024)
    path = "/bravo/project/-/uploads/slow"
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    out, = curl("--limit-rate", "150K", "-T", file, "http://127.0.0.1:#{router.port}#{path}")
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    expect(took).to be > 2.0
    expect(JSON.parse(out)).to include("method" => "PUT", "bytes" => 600 * 1024, "sha256" => sha)
    expect(records_for(@cell_b, path).size).to eq(1)
  ensure
    router&.stop
  end

  # A cell whose worker hangs mid-download (64 KiB streamed, then silence): with `response_idle`
  # at 1 s curl sees the transfer cut (exit 18, "transfer closed with outstanding read data")
  # after about a second (without the cut it waited out the worker's 8 s and got the rest).
  it "a download whose cell stalls halfway is cut after response_idle" do
    router = extra_router("router_curl_stall", "response_idle" => "1s")
    file = File.join(@tmp, "stalled.bin")
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    _, err, status = Open3.capture3("curl", "--silent", "--show-error", "--max-time", "20", "-o", file,
                                    "http://127.0.0.1:#{router.port}/bravo/project/-/stalled-download")
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    expect(status.exitstatus).to eq(18), "curl: #{err}"
    expect(took).to be_between(0.8, 10)
    expect(File.size(file)).to eq(64 * 1024)
  ensure
    router&.stop
  end
end
