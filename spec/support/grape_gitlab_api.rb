# frozen_string_literal: true

require "grape"
require "json"

# A GitLab-shaped Grape API (grape 1.6) for the differential specs: version v4 in the path,
# `prefix :api`, `format :json`, `requirements: { id: %r{[^/]+} }` on project/group/namespace
# resources (so `gitlab-org%2Fgitlab` is one id), `file_path: /.+/` as GitLab's repository files
# API has, an optional segment, `route :any`, an explicit OPTIONS route, and optionally GitLab's
# final `route :any, '*path'` catch-all. Every endpoint answers with its route's identity in
# headers, so a spec knows which route Grape's router picked:
# `X-Route: <request_method> <route.path>` and `X-Params: <routing args as JSON>`.
module GrapeGitlabApi
  PROJECT_ID = { id: %r{[^/]+} }.freeze

  # Endpoint helpers: the identity of the route Grape picked.
  module Identity
    def identity_headers
      args = env[Grape::Env::GRAPE_ROUTING_ARGS].reject { |k, _| k == :route_info }
      { "X-Route" => "#{route.request_method} #{route.path}", "X-Params" => JSON.generate(args.transform_keys(&:to_s)) }
    end

    def identify!
      identity_headers.each { |k, v| header k, v }
      { route: route.path, method: route.request_method }
    end
  end

  module_function

  # @param catch_all [Boolean] end with GitLab's `route :any, '*path'` (404 for everything else)
  # @return [Class] a new Grape::API subclass
  def build(catch_all: false)
    Class.new(Grape::API) do
      version "v4", using: :path
      prefix :api
      format :json
      helpers Identity

      get("/version") { identify! }
      get("/metadata") { identify! }
      get("/user") { identify! }
      post("/markdown") { identify! }

      resource :projects, requirements: PROJECT_ID do
        get { identify! }
        post { identify! }
        get(":id") { identify! }
        put(":id") { identify! }
        delete(":id") { identify! }
        post(":id/fork") { identify! }
        get(":id/issues") { identify! }
        post(":id/issues") { identify! }
        get(":id/issues/:issue_iid") { identify! }
        put(":id/issues/:issue_iid") { identify! }
        delete(":id/issues/:issue_iid") { identify! }
        get(":id/merge_requests") { identify! }
        post(":id/merge_requests") { identify! }
        get(":id/merge_requests/:merge_request_iid") { identify! }
        put(":id/merge_requests/:merge_request_iid") { identify! }
        put(":id/merge_requests/:merge_request_iid/merge") { identify! }
        get(":id/merge_requests/:merge_request_iid/changes") { identify! }
        get(":id/repository/files/:file_path/raw", requirements: { file_path: /.+/ }) { identify! }
        get(":id/repository/files/:file_path", requirements: { file_path: /.+/ }) { identify! }
        post(":id/repository/files/:file_path", requirements: { file_path: /.+/ }) { identify! }
        get(":id/repository/tree") { identify! }
        get(":id/repository/commits(/:sha)") { identify! }
        get(":id/repository/archive(.:sha_format)") { identify! }
        patch(":id/labels/:label_id") { identify! }
        route(:any, ":id/hooks/:hook_id/test") { identify! }
        options(":id/custom") { identify! }
        get(":id/custom") { identify! }
        get(":id/packages/generic/*package_path") { identify! }
      end

      resource :groups, requirements: PROJECT_ID do
        get { identify! }
        get(":id") { identify! }
        get(":id/projects") { identify! }
        post(":id/transfer") { identify! }
        delete(":id") { identify! }
      end

      resource :users do
        get { identify! }
        get(":id") { identify! }
        get(":id/projects") { identify! }
        post(":id/block") { identify! }
      end

      resource :namespaces, requirements: PROJECT_ID do
        get { identify! }
        get(":id") { identify! }
        get(":id/exists") { identify! }
      end

      get("/snippets/:id/raw") { identify! }
      get("/:a.:b/dotted") { identify! }

      route(:any, "*path") { error!("404 Not Found", 404, identity_headers) } if catch_all
    end
  end
end
