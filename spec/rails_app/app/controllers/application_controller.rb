# frozen_string_literal: true

# Every action answers with what Rails dispatched: `X-Dispatched: controller#action` and the same
# in the body, so that the differential spec compares it with the route the learn endpoint names.
class ApplicationController < ActionController::Base
  DISPATCHED = "X-Dispatched"

  # The differential sends POST, PUT and DELETE without a session: routing is what is compared.
  skip_forgery_protection

  # Defines actions that only record themselves (the application has no views).
  def self.actions(*names)
    names.each { |name| define_method(name) { record } }
  end

  private

  def record
    dispatched = "#{controller_path}##{action_name}"
    response.headers[DISPATCHED] = dispatched
    render plain: dispatched
  end
end
