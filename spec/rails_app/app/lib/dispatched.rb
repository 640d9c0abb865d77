# frozen_string_literal: true

# A Rack endpoint that says it ran: `X-Dispatched: route:NAME`, NAME being the route's name. For
# the routes that have no controller to record it (redirects, the mounted Rack app).
class Dispatched
  def initialize(name, app)
    @label = "route:#{name}"
    @app = app
  end

  def call(env)
    status, headers, body = @app.call(env)
    [status, headers.merge(ApplicationController::DISPATCHED => @label), body]
  end
end
