# frozen_string_literal: true

# GitLab's API::API in miniature: mounted at /, claims /api/v4/...; each endpoint says which Grape
# route ran: `X-Dispatched: grape:VERB path`, the endpoint's declared method (GET also when Grape
# serves HEAD with it) and Grape's path without `(.:format)`. Grape's own answers for a known path
# say so too: `grape:OPTIONS path` (204 with Allow) and `grape:405 path` (another verb).
class API < Grape::API
  prefix :api
  version "v4", using: :path
  default_format :json

  # GitLab's API::NAMESPACE_OR_PROJECT_REQUIREMENTS: an id or a URL-encoded full path.
  NAMESPACE_OR_PROJECT_REQUIREMENTS = { id: %r{[^/]+} }.freeze

  before do
    method = if env[Grape::Env::GRAPE_ALLOWED_METHODS]
               env["REQUEST_METHOD"] == "OPTIONS" ? "OPTIONS" : "405"
             else
               options[:method].join("|")
             end
    header ApplicationController::DISPATCHED, "grape:#{method} #{route.path.delete_suffix("(.:format)")}"
  end

  resource :projects, requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS do
    get { [] }
    get(":id") { { id: params[:id] } }
    get(":id/issues") { [] }
    post(":id/issues") { {} }
    get(":id/repository/files/:file_path", requirements: { file_path: %r{[^/]+} }) { {} }
  end

  resource :groups, requirements: NAMESPACE_OR_PROJECT_REQUIREMENTS do
    get { [] }
    get(":id") { { id: params[:id] } }
  end

  get("user") { {} }
  get("users/:id") { {} }
  get("version") { { version: "17.0.0" } }
end
