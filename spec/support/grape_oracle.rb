# frozen_string_literal: true

require "json"
require "rack/mock"

# Asks a Rack app built from Grape endpoints (see GrapeGitlabApi) which route answered: the
# endpoints put their route's identity in `X-Route` / `X-Params`; Grape's own 405 and
# auto-OPTIONS answers carry no identity but have their status and `Allow` header.
module GrapeOracle
  # kind: :route (method, grape_path, params), :not_allowed (405), :options (204 + allow), :none
  Answer = Struct.new(:kind, :method, :grape_path, :params, :status, :allow, keyword_init: true)

  module_function

  # @param app [#call] a Grape API, or a Rails RouteSet with Grape mounted
  # @return [Answer]
  def ask(app, method, path)
    status, headers, body = app.call(RoutesRailsOracle.env_for(method, path))
    body.close if body.respond_to?(:close)
    if headers["X-Route"]
      grape_method, grape_path = headers["X-Route"].split(" ", 2)
      Answer.new(kind: :route, method: grape_method, grape_path: grape_path, params: JSON.parse(headers["X-Params"]), status: status)
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
end
