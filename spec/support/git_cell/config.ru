# frozen_string_literal: true

# A cell that serves Git over HTTP, for spec/router_git_clients_spec.rb: Debian's (or the
# installed) `git http-backend` run as a CGI program for `/<namespace>/<project>.git/...`
# (`info/refs`, `git-upload-pack`, `git-receive-pack`), behind the gem's middleware, with the
# gem's learn endpoint over GitLab CE's recorded routes (../shared/corpus/gitlab-ce.routes.json,
# which carry GitLab's Git HTTP routes, `/*namespace_id/:project_id/info/refs` and friends, with
# the `.git` suffix on the project). As in GitLab, a route with a dynamic constraint (a group,
# project or user that must exist) holds only for the entities that exist: GIT_PROJECTS and
# their namespaces. Without that, `GET /ns/project.git/info/refs` would be a `groups#show`
# for group `ns/project.git/info/refs` (route `/*id`, tried first), answered by the default cell.
# The request body
# streams into the backend's stdin from a thread while its stdout streams back as the response
# body; `Content-encoding: gzip` request bodies (git sends them for large negotiations) are

# inflated by git http-backend itself (HTTP_CONTENT_ENCODING).
#
# Any other path is an upload sink for spec/router_curl_spec.rb: it reads the whole request body
# and answers with its size and SHA-256 (for multipart/form-data, of the `file` part as Rack parses
# it), so that a spec can tell that a body arrived byte for byte.
#
# Every request other than the learn endpoint is recorded (method, path, query, framing of the
# request body, bytes given to the backend, status) and served at GET /-/git/records.
#
# Environment:
#   GIT_CELL          this cell's name
#   GIT_CELLS         every cell name, comma separated
#   GIT_DEFAULT       the default cell
#   GIT_OWNERS        top-level namespace owners: "alpha=cell_a,bravo=cell_b"
#   GIT_REPOS         the directory holding this cell's bare repositories (GIT_PROJECT_ROOT)
#   GIT_PROJECTS      the projects that exist (on any cell), e.g. "alpha/tools,bravo/project"
#   GIT_ROUTES        route table (default ../shared/corpus/gitlab-ce.routes.json)

require "json"
require "logger"
require "digest"
require "open3"

root = File.expand_path("../../..", __dir__)
$LOAD_PATH.unshift(File.join(root, "lib")) unless $LOAD_PATH.include?(File.join(root, "lib"))
require "gitlab/cells/learn"

module GitCell
  LEARN_PATH = Gitlab::Cells::Learn::Endpoint::MOUNT_PATH
  CHUNK = 64 * 1024
  GIT_ENDPOINT = %r{\.git/(?:info/refs|git-upload-pack|git-receive-pack)\z}
  # The CGI program: `git --exec-path` holds it.
  BACKEND = File.join(`git --exec-path`.strip, "git-http-backend")

  # Records each request and serves the records; outermost layer.
  class Recorder
    def initialize(app, cell:)
      @app = app
      @cell = cell
      @records = []
      @lock = Mutex.new
    end

    def call(env)
      case env["PATH_INFO"]
      when "/-/health" then return [200, { "content-type" => "text/plain", "x-served-by" => @cell }, ["ok"]]
      when "/-/git/records"
        body = JSON.generate("cell" => @cell, "records" => @lock.synchronize { @records.dup })
        return [200, { "content-type" => "application/json", "cache-control" => "no-store" }, [body]]
      end

      # The backend fills in body_bytes once it has read the whole request body.
      record = env["git_cell.record"] = {
        "cell" => @cell, "method" => env["REQUEST_METHOD"], "path" => env["PATH_INFO"], "query" => env["QUERY_STRING"].to_s,
        "content_length" => env["CONTENT_LENGTH"], "transfer_encoding" => env["HTTP_TRANSFER_ENCODING"],
        "content_encoding" => env["HTTP_CONTENT_ENCODING"], "body_bytes" => nil
      }
      status, headers, body = @app.call(env)
      record["status"] = status.to_i
      @lock.synchronize { @records << record } unless env["PATH_INFO"] == LEARN_PATH
      headers = headers.dup if headers.frozen?
      headers["x-served-by"] = @cell
      [status, headers, body]
    end
  end

  # git http-backend as CGI (RFC 3875), streamed both ways.
  class Backend
    def initialize(repos)
      @repos = repos
    end

    def call(env)
      cgi = {
        "GIT_PROJECT_ROOT" => @repos, "GIT_HTTP_EXPORT_ALL" => "1",
        "GATEWAY_INTERFACE" => "CGI/1.1", "SERVER_PROTOCOL" => "HTTP/1.1", "SERVER_SOFTWARE" => "git-cell",
        "REQUEST_METHOD" => env["REQUEST_METHOD"], "PATH_INFO" => env["PATH_INFO"], "QUERY_STRING" => env["QUERY_STRING"].to_s,
        "CONTENT_TYPE" => env["CONTENT_TYPE"].to_s, "REMOTE_ADDR" => env["REMOTE_ADDR"].to_s, "REMOTE_USER" => "git-cell"
      }
      cgi["CONTENT_LENGTH"] = env["CONTENT_LENGTH"] if env["CONTENT_LENGTH"]
      # Every request header as HTTP_*: HTTP_CONTENT_ENCODING (gzip bodies), HTTP_GIT_PROTOCOL (v2).
      env.each { |k, v| cgi[k] = v if k.start_with?("HTTP_") && v.is_a?(String) }

      stdin, stdout, stderr, wait = Open3.popen3(cgi, BACKEND, unsetenv_others: false)
      input = env["rack.input"]
      # A thread feeds the body while this one reads the answer: the backend may answer (or
      # report progress) before it has read everything, and neither pipe may fill up unread.
      writer = Thread.new do
        bytes = 0
        while (chunk = input.read(CHUNK))
          stdin.write(chunk)
          bytes += chunk.bytesize
        end
        bytes
      rescue IOError, SystemCallError
        bytes # the backend stopped reading: its answer says why
      ensure
        stdin.close unless stdin.closed?
      end
      errors = Thread.new { stderr.read }
      status, headers = read_cgi_head(stdout)
      [status, headers, PipeBody.new(stdout, wait, errors, writer, env["git_cell.record"])]
    end

    private

    def read_cgi_head(io)
      status = 200
      headers = {}
      while (line = io.gets) && !(line = line.chomp).empty?
        name, value = line.split(":", 2)
        if name.casecmp?("status")
          status = value.to_i
        else
          headers[name.downcase] = value.strip
        end
      end
      [status, headers]
    end
  end

  # A download whose worker hangs halfway (`GET .../-/stalled-download`): the first 64 KiB are
  # streamed, then nothing for 8 s (the router's `response_idle` must cut it first).
  class StalledDownload
    PART = ("0123456789abcdef" * 4096).freeze

    def each
      yield PART
      sleep 8
      yield PART
    end
  end

  # Reads the body; answers its size and digest (of the `file` part for multipart forms).
  class Uploads
    def call(env)
      return [200, { "content-type" => "application/octet-stream" }, StalledDownload.new] if env["PATH_INFO"].end_with?("/-/stalled-download")

      req = Rack::Request.new(env)
      answer = { "method" => env["REQUEST_METHOD"], "path" => env["PATH_INFO"], "expect" => env["HTTP_EXPECT"] }
      if req.media_type == "multipart/form-data"
        file = req.POST["file"] or return [400, { "content-type" => "text/plain" }, ["no file part"]]
        data = File.binread(file[:tempfile].path)
        answer.merge!("part_filename" => file[:filename], "bytes" => data.bytesize, "sha256" => Digest::SHA256.hexdigest(data))
        env["git_cell.record"]["body_bytes"] = env["CONTENT_LENGTH"].to_i
      else
        digest = Digest::SHA256.new
        bytes = 0
        input = env["rack.input"]
        while (chunk = input.read(CHUNK))
          digest << chunk
          bytes += chunk.bytesize
        end
        answer.merge!("bytes" => bytes, "sha256" => digest.hexdigest)
        env["git_cell.record"]["body_bytes"] = bytes
      end
      [200, { "content-type" => "application/json" }, [JSON.generate(answer)]]
    end
  end

  # The backend's stdout after its CGI head, as it comes.
  class PipeBody
    def initialize(io, wait, errors, writer, record)
      @io = io
      @wait = wait
      @errors = errors
      @writer = writer
      @record = record
    end

    def each
      loop { yield @io.readpartial(CHUNK) }
    rescue EOFError
      nil
    end

    def close
      @io.close unless @io.closed?
      bytes = @writer.value
      @record["body_bytes"] = bytes if @record
      @wait.value
      err = @errors.value.to_s
      warn "git http-backend: #{err}" unless err.empty?
    end
  end

  module_function

  def app(env, root)
    cell = env.fetch("GIT_CELL")
    cells = env.fetch("GIT_CELLS").split(",")
    default_cell = env.fetch("GIT_DEFAULT")
    owners = env.fetch("GIT_OWNERS", "").split(",").to_h { |pair| pair.split("=", 2) }
    repos = env.fetch("GIT_REPOS")

    rules = JSON.parse(File.read(File.join(root, "rules", "gitlab.json")))
    rules["default_cell"] = default_cell
    rules["fixed"].each { |rule| rule["cell"] = default_cell if rule.key?("cell") }
    routes = env["GIT_ROUTES"] || File.expand_path("../shared/corpus/gitlab-ce.routes.json", root)
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(routes), rules: rules)
    resolver = ->(entity) { owners[entity.key.to_s.split("/").first] }
    logger = Logger.new($stderr, progname: cell)
    projects = env.fetch("GIT_PROJECTS", "").split(",")
    groups = projects.map { |p| File.dirname(p) }.uniq
    # GroupUrlConstrainer / ProjectUrlConstrainer / UserUrlConstrainer: does the entity exist?
    constraint = lambda do |route, params|
      case route.endpoint
      when /\Agroups/ then groups.include?(params["id"] || params["group_id"])
      when /\Aprojects/ then projects.include?("#{params["namespace_id"]}/#{params["project_id"] || params["id"]}".delete_suffix(".git"))
      else false
      end
    end

    endpoint = Gitlab::Cells::Learn::Endpoint.new(classifier: classifier, resolver: resolver, default_cell: default_cell,
                                                  constraint: constraint, logger: logger)
    backend = Backend.new(repos)
    uploads = Uploads.new
    served = ->(rack_env) { rack_env["PATH_INFO"].match?(GIT_ENDPOINT) ? backend.call(rack_env) : uploads.call(rack_env) }
    git = Gitlab::Cells::Learn::Middleware.new(served, classifier: classifier, resolver: resolver, cell: cell,
                                                       default_cell: default_cell, cells: cells, constraint: constraint, logger: logger)
    dispatch = ->(rack_env) { rack_env["PATH_INFO"] == LEARN_PATH ? endpoint.call(rack_env) : git.call(rack_env) }
    Recorder.new(dispatch, cell: cell)
  end
end

run GitCell.app(ENV, root)
