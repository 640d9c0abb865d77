# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "fileutils"
require "open3"
require "securerandom"

# Real Git over HTTP through the router (issue 14, item 8): the `git` client clones, fetches and
# pushes through target/release/cells-router to Puma cells that run `git http-backend`
# (spec/support/git_cell/config.ru) behind the gem's middleware and learn endpoint. `bravo/*`
# belongs to cell_b, `alpha/*` to cell_a (the default cell); each cell holds only its own
# repositories, so a request sent to the wrong cell fails (the middleware answers 421).
#
# What is checked: git's own verdict (exit status and the objects it got or left), the cells'
# records (every Git request reached the owner, none reached the other cell), and the router's
# access log against those records (each request the router forwarded reached the cell once).
RSpec.describe "git clients through the router", :e2e do
  def git(*args, dir: nil, env: {})
    out, status = Open3.capture2e({ "GIT_TERMINAL_PROMPT" => "0", "GIT_CONFIG_NOSYSTEM" => "1", "HOME" => @home }.merge(env),
                                  "git", *args, chdir: dir || @tmp)
    raise "git #{args.join(" ")} failed (#{status}):\n#{out}" unless status.success?

    out
  end

  # A bare repository at REPOS/namespace/name.git with one commit holding `files`.
  def bare_repo(repos, path, files)
    src = File.join(@tmp, "src-#{path.tr("/", "-")}")
    FileUtils.mkdir_p(src)
    git("init", "-q", "-b", "main", src)
    files.each do |name, text|
      FileUtils.mkdir_p(File.dirname(File.join(src, name)))
      File.write(File.join(src, name), text)
    end
    git("add", ".", dir: src)
    git("commit", "-q", "-m", "first commit of #{path}", dir: src)
    bare = File.join(repos, "#{path}.git")
    FileUtils.mkdir_p(File.dirname(bare))
    git("clone", "-q", "--bare", src, bare)
    git("config", "http.receivepack", "true", dir: bare)
    bare
  end

  def url(path)
    "http://127.0.0.1:#{@router.port}/#{path}"
  end

  # The router's access-log lines so far (JSON, target cells_router::access).
  def access_lines
    File.readlines(@router.log).filter_map do |line|
      JSON.parse(line)
    rescue JSON::ParserError
      nil
    end.select { |l| l["message"] == "request" || l.dig("fields", "message") == "request" }
  end

  def field(line, name)
    line.key?(name) ? line[name] : line.dig("fields", name)
  end

  # Git requests the router served so far for paths under `prefix`, as "METHOD path" strings.
  def forwarded(prefix)
    access_lines.filter_map { |l| "#{field(l, "method")} #{field(l, "path")}" if field(l, "path").to_s.start_with?(prefix) }
  end

  def recorded(cell, prefix)
    cell.records.filter_map { |r| "#{r["method"]} #{r["path"]}" if r["path"].start_with?(prefix) }
  end

  before(:all) do
    raise "#{E2E::ROUTER_BIN} is missing: build it first (`cargo build --release -p cells-router`)" unless File.executable?(E2E::ROUTER_BIN)

    @tmp = Dir.mktmpdir("cells-git")
    @home = File.join(@tmp, "home")
    FileUtils.mkdir_p(@home)
    File.write(File.join(@home, ".gitconfig"), "[user]\n\tname = Router Spec\n\temail = router-spec@example.com\n[init]\n\tdefaultBranch = main\n")

    @repos = { "cell_a" => File.join(@tmp, "repos-a"), "cell_b" => File.join(@tmp, "repos-b") }
    @bravo = bare_repo(@repos["cell_b"], "bravo/project", "README.md" => "bravo's project\n", "lib/app.rb" => "puts :bravo\n")
    @alpha = bare_repo(@repos["cell_a"], "alpha/tools", "README.md" => "alpha's tools\n")

    @cells, @router = E2E.git_cells_behind_router(dir: @tmp, name: "router_git", default_cell: "cell_a", repos: @repos)
    @cell_a, @cell_b = @cells
  end

  after(:all) do
    E2E.stop_all
    FileUtils.rm_rf(@tmp) if @tmp
  end

  it "clones, pushes and fetches bravo/project on cell_b, each request forwarded once" do
    clone = File.join(@tmp, "clone")
    git("clone", "-q", url("bravo/project.git"), clone)
    expect(File.read(File.join(clone, "lib", "app.rb"))).to eq("puts :bravo\n")
    expect(git("rev-parse", "HEAD", dir: clone)).to eq(git("rev-parse", "main", dir: @bravo))

    # A second clone, to fetch into later.
    other = File.join(@tmp, "other")
    git("clone", "-q", url("bravo/project.git"), other)

    File.write(File.join(clone, "CHANGELOG.md"), "pushed through the router\n")
    git("add", "CHANGELOG.md", dir: clone)
    git("commit", "-q", "-m", "a commit pushed through the router", dir: clone)
    git("push", "-q", "origin", "main", dir: clone)
    pushed = git("rev-parse", "HEAD", dir: clone)
    expect(git("rev-parse", "main", dir: @bravo)).to eq(pushed)
    expect(git("show", "main:CHANGELOG.md", dir: @bravo)).to eq("pushed through the router\n")

    git("fetch", "-q", "origin", dir: other)
    expect(git("rev-parse", "origin/main", dir: other)).to eq(pushed)

    # The Git endpoints were used, on the owner only.
    seen = recorded(@cell_b, "/bravo/")
    expect(seen).to include("GET /bravo/project.git/info/refs", "POST /bravo/project.git/git-upload-pack",
                            "POST /bravo/project.git/git-receive-pack")
    queries = @cell_b.records.map { |r| r["query"] }
    expect(queries).to include("service=git-upload-pack", "service=git-receive-pack")
    expect(recorded(@cell_a, "/bravo/")).to be_empty
    expect(@cell_b.records.select { |r| r["path"].start_with?("/bravo/") }.map { |r| r["status"] }.uniq).to eq([200])
    # Every request the router logged reached the cell exactly once, and nothing else did.
    expect(seen.tally).to eq(forwarded("/bravo/").tally)
  end

  it "pushes a few MB with git's chunked transfer-encoding, byte for byte" do
    clone = File.join(@tmp, "big")
    git("clone", "-q", url("bravo/project.git"), clone)
    blob = SecureRandom.random_bytes(3 * 1024 * 1024) # incompressible: the pack is as large
    File.binwrite(File.join(clone, "big.bin"), blob)
    git("add", "big.bin", dir: clone)
    git("commit", "-q", "-m", "3 MB of random bytes", dir: clone)
    trace = File.join(@tmp, "curl-trace.txt")
    before = @cell_b.records.size
    git("-c", "http.postBuffer=1024", "push", "-q", "origin", "main", dir: clone,
                                                                      env: { "GIT_TRACE_CURL" => trace, "GIT_TRACE_CURL_NO_DATA" => "1" })

    # git sent the pack chunked (its post buffer is smaller than the pack) ...
    sent = File.read(trace)
    expect(sent).to match(%r{POST /bravo/project\.git/git-receive-pack HTTP/1\.1.*?Transfer-Encoding: chunked}m)
    # ... and the bare repository on cell_b has the blob, byte for byte.
    expect(git("rev-parse", "main", dir: @bravo)).to eq(git("rev-parse", "HEAD", dir: clone))
    stored, status = Open3.capture2("git", "cat-file", "blob", "main:big.bin", chdir: @bravo, binmode: true)
    expect(status).to be_success
    expect(stored.bytesize).to eq(blob.bytesize)
    expect(stored == blob).to be(true)

    # git first sends a 4-byte probe (a flush packet: `probe_rpc`, for a body larger than its post
    # buffer), then the pack. Each reached cell_b once, with every byte (more than the blob: pack
    # framing and headers). Puma decodes a chunked body before the app sees it and gives the app
    # the decoded length. (body_bytes is filled in when Puma closes the response body, just
    # after git got the response.)
    receive = nil
    deadline = E2E.now + 5
    loop do
      receive = @cell_b.records.drop(before).select { |r| r["method"] == "POST" && r["path"].end_with?("/git-receive-pack") }
      break if receive.all? { |r| r["body_bytes"] } || E2E.now > deadline

      sleep 0.05
    end
    expect(receive.map { |r| r["body_bytes"] }.sort).to match([4, be > blob.bytesize])
    expect(receive.map { |r| r["content_length"] }).to eq(receive.map { |r| r["body_bytes"].to_s })
    expect(recorded(@cell_b, "/bravo/").tally).to eq(forwarded("/bravo/").tally)
    expect(recorded(@cell_a, "/bravo/")).to be_empty
  end

  it "routes alpha/tools to cell_a, the default cell, with the same clients" do
    clone = File.join(@tmp, "alpha")
    git("clone", "-q", url("alpha/tools.git"), clone)
    expect(File.read(File.join(clone, "README.md"))).to eq("alpha's tools\n")
    expect(recorded(@cell_a, "/alpha/")).to include("GET /alpha/tools.git/info/refs", "POST /alpha/tools.git/git-upload-pack")
    expect(recorded(@cell_b, "/alpha/")).to be_empty
  end

  it "answers a clone of a repository that exists nowhere with git's own error, not a router error" do
    out, status = Open3.capture2e({ "GIT_TERMINAL_PROMPT" => "0", "HOME" => @home }, "git", "clone", "-q", url("bravo/missing.git"),
                                  File.join(@tmp, "missing"))
    expect(status).not_to be_success
    expect(out).to match(/not found|404/i)
    expect(out).not_to match(/502|503|cell_unreachable|no_cell_available/)
  end
end
