# frozen_string_literal: true

require "json"
require "rack/mock"

# Asks a Rack app built from Grape endpoints (see GrapeGitlabApi) which route answered: the
# endpoints put their route's identity in `X-Route` / `X-Params`; Grape's own 405 and
# auto-OPTIONS answers carry no identity but have their status and `Allow` header.
#
# Grape's router picks a route before the endpoint's own middleware runs, and that middleware
# can still refuse the request: the path versioner (`version "v4", using: :path`) re-reads the
# raw `PATH_INFO` and answers `404 API Version Not Found` when it does not start with the prefix
# (`//api/v4/...`, which the router itself squeezes to `/api/v4/...`). Mounted in Rails, as in
# GitLab, such a path is normalized before Grape sees it. The router's pick is read from the env
# (`grape.routing_args[:route_info]`, set before the endpoint runs) and reported as a `:route`
# answer with `served: false`, so specs compare routing, not the versioner.
module GrapeOracle
  # kind: :route (method, grape_path, params; served: whether the endpoint ran), :not_allowed
  # (405), :options (204 + allow), :none
  Answer = Struct.new(:kind, :method, :grape_path, :params, :status, :allow, :served, keyword_init: true)

  module_function

  # @param app [#call] a Grape API, or a Rails RouteSet with Grape mounted
  # @return [Answer]
  # @raise [RuntimeError] when the endpoint's identity and the router's pick differ
  def ask(app, method, path)
    env = RoutesRailsOracle.env_for(method, path)
    status, headers, body = app.call(env)
    body.close if body.respond_to?(:close)
    args = env[Grape::Env::GRAPE_ROUTING_ARGS] || {}
    picked = args[:route_info]
    # Grape's 405 and auto-OPTIONS answers are made for a path pattern, not a route.
    neutral = picked.is_a?(Grape::Router::AttributeTranslator)
    picked = nil unless picked.is_a?(Grape::Router::Route)
    if headers["X-Route"]
      grape_method, grape_path = headers["X-Route"].split(" ", 2)
      params = JSON.parse(headers["X-Params"])
      if picked && [picked.request_method, picked.path] != [grape_method, grape_path]
        raise "#{method} #{path}: endpoint #{headers["X-Route"]} but router picked #{picked.request_method} #{picked.path}"
      end

      Answer.new(kind: :route, method: grape_method, grape_path: grape_path, params: params, status: status, served: true)
    elsif picked && status != 405 && !(status == 204 && headers["Allow"])
      Answer.new(kind: :route, method: picked.request_method, grape_path: picked.path, status: status, served: false,
                 params: args.reject { |k, _| k == :route_info }.transform_keys(&:to_s))
    elsif neutral && status == 404 && !headers["X-Cascade"]
      # The router answered for the pattern (405, or 204 for OPTIONS) and the versioner refused.
      kind = method == "OPTIONS" ? :options : :not_allowed
      Answer.new(kind: kind, status: status, served: false, allow: args[:route_info].allow_header.sort)
    elsif status == 405
      Answer.new(kind: :not_allowed, status: status, allow: headers["Allow"])
    elsif status == 204 && headers["Allow"]
      Answer.new(kind: :options, status: status, allow: headers["Allow"].split(", ").sort)
    else
      Answer.new(kind: :none, status: status)
    end
  end

  # Whether our route is the one Grape ran: same spec, and a verb that route answers `method` by.
  def same_route?(answer, ours, prefix: "")
    spec = Gitlab::Cells::Learn::GrapeRoutes.journey_spec(answer.grape_path)
    verbs = ours.route.verb.split("|")
    verb_ok = case answer.method
              when "*" then ours.route.verb.empty?
              when "HEAD" then verbs.include?("HEAD") || verbs.include?("GET")
              else verbs.include?(answer.method)
              end
    ours.route.spec == Gitlab::Cells::Learn::RailsRoutes::Prefix.join(prefix, spec) && verb_ok
  end

  # What the two sides said about one request, or nil when they agree.
  # @param answer [GrapeOracle::Answer] Grape's
  # @param ours [Gitlab::Cells::Learn::RouteMatch, nil]
  def disagreement(method, path, answer, ours, prefix: "")
    same = case answer.kind
           when :route
             ours && GrapeOracle.same_route?(answer, ours, prefix: prefix) &&
             RoutesRailsOracle.same_params?(answer.params, ours.params)
           when :options
             ours && ours.route.verb == "OPTIONS"
           else
             ours.nil?
           end
    return nil if same

    grape = answer.to_h.compact.map { |k, v| "#{k}=#{v.inspect}" }.join(" ")
    mine = if ours
             "##{ours.route.index} #{ours.route.verb.empty? ? "ANY" : ours.route.verb} #{ours.route.spec} #{ours.params.inspect}"
           else
             "no route"
           end
    "#{method} #{path.inspect}: Grape #{grape}; ours #{mine}"
  end
end
