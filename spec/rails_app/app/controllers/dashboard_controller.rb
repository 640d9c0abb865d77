# frozen_string_literal: true

class DashboardController < ApplicationController
  actions :issues, :merge_requests, :activity
end
