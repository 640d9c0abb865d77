# frozen_string_literal: true

# Wraps the learn endpoint and adds `X-Learn-Route`: the route the answer was decided by, as the
# `learn.gitlab_cells` event names it (payload `:route`, "#index VERB spec (endpoint)"), written as
# the application's endpoints write what they ran: `controller#action`, `route:NAME` for a named
# route without a controller (redirects, mounted Rack apps), `grape:VERB path` (without `(.:format)`) for the API's
# routes; "none" when no route matches. The event is published in the thread that answers, so a
# thread-local carries it from the subscriber here.
class LearnRouteHeader
  HEADER = "X-Learn-Route"
  KEY = :cells_app_learn_route

  ActiveSupport::Notifications.subscribe(Gitlab::Cells::Learn::Endpoint::EVENT) do |*, payload|
    Thread.current[KEY] = payload[:route] ? label(Integer(payload[:route][/\A#(\d+) /, 1])) : "none"
  end

  def self.label(index)
    route = Gitlab::Cells::Learn::Railtie.classifier.routes.fetch(index)
    return route.endpoint if route.endpoint
    return "route:#{route.name}" if route.name

    "grape:#{route.verb} #{route.spec.delete_suffix("(.:format)")}"
  end

  def initialize(endpoint)
    @endpoint = endpoint
  end

  def call(env)
    Thread.current[KEY] = nil
    status, headers, body = @endpoint.call(env)
    route = Thread.current[KEY]
    [status, route ? headers.merge(HEADER => route) : headers, body]
  end
end
