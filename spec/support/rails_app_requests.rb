# frozen_string_literal: true

require "cgi"
require "json"
require "net/http"

# The requests spec/rails_app_differential_spec.rb sends to the application of spec/rails_app, and
# the clients that send them: for each request, the request itself (what Rails dispatched, from
# `X-Dispatched`) and the learn question about it (what the learn endpoint named, from
# `X-Learn-Route`, and its answer), over keep-alive connections from concurrent client threads.
module RailsAppRequests
  # The cell the application is (config/initializers/cells_learn.rb), and another one.
  CELL = "cell_0"
  OTHER_CELL = "cell_1"

  # The database rows: groups (one a subgroup), users, projects, an old path of a renamed group
  # (GitLab's redirect_routes: followed by the constrainers for GET only); `eu-org` and `eve` are
  # owned by another cell, so the middleware answers 421 for their pages.
  ROWS = {
    "groups" => [{ "path" => "gitlab-org", "cell" => CELL }, { "path" => "sub", "parent" => "gitlab-org", "cell" => CELL },
                 { "path" => "Mixed.Case", "cell" => CELL }, { "path" => "eu-org", "cell" => OTHER_CELL }],
    "users" => [{ "username" => "alice", "cell" => CELL }, { "username" => "bob.smith", "cell" => CELL },
                { "username" => "eve", "cell" => OTHER_CELL }],
    "projects" => [{ "namespace" => "gitlab-org", "path" => "gitlab" }, { "namespace" => "gitlab-org/sub", "path" => "deep.er" },
                   { "namespace" => "alice", "path" => "dotfiles" }, { "namespace" => "Mixed.Case", "path" => "www-site" },
                   { "namespace" => "eu-org", "path" => "app" }],
    "redirects" => [{ "from" => "old-org", "to" => "gitlab-org" }]
  }.freeze

  # Learn routes that are pages of one entity (a project, a group, a user), and paths naming an
  # entity of OTHER_CELL: such a request must be answered by its owner. (`/groups/eu-org.xml` names
  # the group `eu-org.xml`: the group routes refuse the format `xml`, so the glob keeps it.)
  ENTITY_PAGE = %r{\A(projects(/\w+)?\#\w+|groups(/\w+)?\#(show|edit|issues|merge_requests|activity|update|destroy)|users\#show|
                    grape:\S+\ /api/:version/(projects|groups)/:id.*)\z}x
  OTHER_CELL_ENTITY = %r{(\A|/|%2F)(eu-org|eve)(/|\.(json|atom|html)\z|%2F|\z)}i

  # What the second run deletes (the rows its requests then name are absent).
  DELETED = ["gitlab-org/gitlab", "gitlab-org/sub/deep.er", "gitlab-org/sub", "alice/dotfiles", "alice"].freeze

  # Names for rows that never exist, reserved words, and paths the requirements refuse.
  ABSENT_GROUPS = %w[nobody gitlab-org/missing help dashboard users api - x.git ends.atom .hidden a].freeze
  ABSENT_USERS = %w[ghost bob alice.git users].freeze
  ABSENT_PROJECTS = [%w[gitlab-org missing], %w[missing gitlab], %w[gitlab-org/sub gitlab], %w[gitlab-org edit], %w[gitlab-org x.atom],
                     %w[old-org gitlab]].freeze

  METHODS = %w[GET HEAD POST PUT PATCH DELETE OPTIONS].freeze

  module_function

  def groups
    ROWS["groups"].map { |g| [g["parent"], g["path"]].compact.join("/") } + %w[old-org GITLAB-ORG] + ABSENT_GROUPS
  end

  def users
    ROWS["users"].map { |u| u["username"] } + ["ALICE"] + ABSENT_USERS
  end

  def projects
    ROWS["projects"].map { |p| [p["namespace"], p["path"]] } + [%w[old-org gitlab], %w[GitLab-Org GitLab]] + ABSENT_PROJECTS
  end

  PROJECT_PAGES = ["", "/", ".json", "/edit", "/-/issues", "/-/issues/", "/-/issues.json", "/-/issues/new", "/-/issues/12",
                   "/-/issues/12.json", "/-/issues/12/edit", "/-/merge_requests", "/-/merge_requests/3/diffs",
                   "/-/merge_requests/3/diffs.json", "/-/tree/main/app/models", "/-/tree/v1.0/x.rb", "/-/blob/main/README.md",
                   "/issues", "/issues/5", "/-/nope", "/-/issues/12/nope"].freeze
  GROUP_PAGES = ["/groups/%s", "/groups/%s/", "/groups/%s.json", "/groups/%s.xml", "/groups/%s/-/edit", "/groups/%s/-/issues",
                 "/groups/%s/-/issues.atom", "/groups/%s/-/milestones", "/groups/%s/-/milestones/v1.0", "/%s", "/%s/", "/%s.json",
                 "/%s.atom", "/%s.xml", "/api/v4/groups/%<escaped>s"].freeze
  USER_PAGES = ["/%s", "/%s.json", "/users/%s", "/users/%s/", "/users/%s/calendar", "/users/%s/projects.json", "/u/%s",
                "/api/v4/users/%s"].freeze
  FIXED = ["/", "/help", "/help/", "/help/user/index.md", "/help/user/index.md.html", "/-/profile", "/-/profile.json",
           "/-/profile/keys", "/-/profile/keys/3", "/dashboard", "/dashboard/", "/dashboard/issues", "/dashboard/issues.atom",
           "/dashboard/help", "/dashboard/projects/starred", "/explore/projects/trending", "/users/sign_in", "/users/sign_in.json",
           "/users/sign_out", "/users/sign_up", "/users", "/users/password", "/users/password/new", "/groups", "/groups/new",
           "/projects", "/projects/new", "/-/health", "/-/health/", "/-/health/live", "/-/healthx", "//help", "/help//user",
           "/api/v4/projects", "/api/v4/projects/42", "/api/v4/projects/42/issues", "/api/v4/projects/42/issues.json",
           "/api/v4/projects/42/repository/files/README.md", "/api/v4/user", "/api/v4/version", "/api/v4/version.json",
           "/api/v3/projects", "/api/v4/nope", "/api", "/api/v4", "/%2D/profile", "/h%65lp", "/dashboard%2Fissues"].freeze
  # Paths whose parameters are not UTF-8 once unescaped (see INVALID_UTF8 below).
  NOT_UTF8 = ["/%FF", "/gitlab-org/%FF", "/gitlab-org/gitlab/-/issues/%FF", "/gitlab-org/gitlab/-/tree/main/%E9t%E9", "/groups/%C3",
              "/api/v4/projects/%FF", "/help/%FF"].freeze

  # Every path, once: the templates above applied to the rows, to the absent names, and with
  # percent-encoded variants.
  def paths
    out = FIXED + NOT_UTF8
    projects.each do |namespace, project|
      base = "/#{namespace}/#{project}"
      PROJECT_PAGES.each { |page| out << "#{base}#{page}" }
      out << "/api/v4/projects/#{CGI.escape("#{namespace}/#{project}")}"
      out << "/#{namespace.sub("/", "%2F")}/#{project}" << "/#{namespace}/#{project.sub(/\w/) { |c| format("%%%02X", c.ord) }}"
    end
    groups.each do |group|
      GROUP_PAGES.each { |page| out << page.sub("%<escaped>s", CGI.escape(group)).sub("%s", group) }
    end
    users.each { |user| USER_PAGES.each { |page| out << page.sub("%s", user) } }
    out.uniq
  end

  # Each path with GET, HEAD and one more method (seeded: the same list every run).
  def requests(seed: 15)
    random = Random.new(seed)
    paths.flat_map do |path|
      [["GET", path], ["HEAD", path], [(METHODS - %w[GET HEAD]).sample(random: random), path]]
    end
  end

  # One request and its learn question, as observed.
  Observation = Struct.new(:request_method, :path, :status, :dispatched, :cache_header, :owner, :learn_status, :learned, :answer,
                           keyword_init: true) do
    def agree?
      dispatched == learned
    end

    # The cell middleware answered 421 for an entity another cell owns: nothing was dispatched here.
    def misdirected?
      status == 421
    end

    # Rails refused the request while routing it: a path parameter that is not UTF-8 once
    # unescaped raises ActionController::BadRequest in `path_parameters=`, at the first route whose
    # pattern matches, before that route's constraints are asked (400; Grape's own check: 500).
    def not_utf8?
      [400, 500].include?(status) && dispatched == "none" && !CGI.unescape(path).force_encoding(Encoding::UTF_8).valid_encoding?
    end

    # The X-Gitlab-Cell-Cache the middleware should have added, from the learn answer: the
    # middleware and the endpoint classify with the same constraint objects.
    def expected_cache_header
      return nil unless answer && answer["cacheable"] != false && status < 500

      Gitlab::Cells::Learn::CacheHeader.format(path: answer["path"], cell: answer["cell"], exact: answer["exact"] == true)
    end
  end

  # Sends every request and its learn question from `concurrency` threads, each with its own
  # keep-alive connection. @return [Array<Observation>] in the order of `requests`
  def observe(port, requests, concurrency: 8)
    queue = Queue.new
    requests.each_with_index { |r, i| queue << [i, *r] }
    queue.close
    results = Array.new(requests.size)
    Array.new(concurrency) do
      Thread.new do
        Net::HTTP.start("127.0.0.1", port, read_timeout: 30) do |http|
          while (item = queue.pop)
            i, method, path = item
            results[i] = observe_one(http, method, path)
          end
        end
      end
    end.each(&:join)
    results
  end

  def observe_one(http, method, path)
    response = http.request(Net::HTTPGenericRequest.new(method, %w[POST PUT PATCH].include?(method), method != "HEAD", path))
    learn = http.request(Net::HTTP::Get.new("#{Gitlab::Cells::Learn::Endpoint::MOUNT_PATH}?method=#{method}&path_info=#{CGI.escape(path)}"))
    Observation.new(request_method: method, path: path, status: response.code.to_i, dispatched: response["X-Dispatched"] || "none",
                    cache_header: response[Gitlab::Cells::Learn::CacheHeader::NAME],
                    owner: response[Gitlab::Cells::Learn::Middleware::OWNER_HEADER], learn_status: learn.code.to_i,
                    learned: learn["X-Learn-Route"], answer: learn.code == "200" ? JSON.parse(learn.body) : nil)
  end
end
