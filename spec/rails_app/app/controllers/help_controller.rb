# frozen_string_literal: true

class HelpController < ApplicationController
  actions :index, :show
end
