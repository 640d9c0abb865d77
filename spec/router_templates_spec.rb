# frozen_string_literal: true

require "open3"
require "tmpdir"

# support/router-templates.sh, which script/bench-router, script/router-instructions,
# script/build-router-pgo and script/redis-kill-figure share: every template of benches/router renders with the names its
# callers give, and a placeholder nobody fills stops the caller with one line instead of leaving
# nginx or the router a broken file.
RSpec.describe "support/router-templates.sh" do
  helper = File.join(REPO_ROOT, "support", "router-templates.sh")
  templates = File.join(REPO_ROOT, "benches", "router")

  # Runs `render_template TEMPLATE OUT ARGS...` in bash; returns [out file text or nil, stderr, status].
  def render(helper, template, *args)
    Dir.mktmpdir("router-templates") do |dir|
      out = File.join(dir, "out")
      _, err, status = Open3.capture3("bash", "-c", '. "$0"; render_template "$@"', helper, template, out, *args)
      [File.exist?(out) ? File.read(out) : nil, err, status]
    end
  end

  {
    "upstream.conf.in" => %w[DIR=/tmp/x UPSTREAM_PORT=9001 UPSTREAM_WORKERS=1],
    "nginx-proxy.conf.in" => %w[DIR=/tmp/x UPSTREAM_PORT=9001 PROXY_PORT=9002 PROXY_WORKERS=auto],
    "router.toml.in" => %w[UPSTREAM_PORT=9001 ROUTER_PORT=9003 CAPACITY=100 INTERNAL_PORT=9004]
  }.each do |name, args|
    it "renders #{name} with every placeholder filled in" do
      text, err, status = render(helper, File.join(templates, name), *args)
      expect(status).to be_success, err
      expect(text).not_to match(/@[A-Z_]+@/)
      args.each { |kv| expect(text).to include(kv.split("=", 2).last) }
    end
  end

  it "puts each value where its name was" do
    text, = render(helper, File.join(templates, "router.toml.in"),
                   *%w[UPSTREAM_PORT=9001 ROUTER_PORT=9003 CAPACITY=100 INTERNAL_PORT=9004])
    expect(text).to include('listen = "127.0.0.1:9003"', 'internal_listen = "127.0.0.1:9004"', "capacity = 100",
                            'url = "http://127.0.0.1:9001"')
  end

  it "takes each value literally, whatever sed would make of it" do
    text, err, status = render(helper, File.join(templates, "upstream.conf.in"),
                               'DIR=/tmp/a&b|c\\d', "UPSTREAM_PORT=9001", "UPSTREAM_WORKERS=1")
    expect(status).to be_success, err
    expect(text).to include('pid /tmp/a&b|c\\d/upstream.pid;')
  end

  it "stops its caller with one line naming the placeholder left unfilled" do
    _, err, status = render(helper, File.join(templates, "router.toml.in"), *%w[UPSTREAM_PORT=9001 ROUTER_PORT=9003])
    expect(status.exitstatus).to eq(1)
    expect(err.lines.size).to eq(1)
    expect(err).to include("router.toml.in").and match(/@(CAPACITY|INTERNAL_PORT)@ is not filled in/)
  end
end
